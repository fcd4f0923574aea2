"""The watch service's parts: completeness checks, the state database, atomic outputs, path filters."""
import json
import struct
import zlib

import cv2
import pytest

from bcedge.watch.completeness import (EmptyFile, NotAnImage, StabilityTracker, TruncatedImage, precheck,
                                       signature)
from bcedge.watch.discovery import PathFilter, is_temp_name, scan
from bcedge.atomic import atomic_write_json, temp_path
from bcedge.detections import Detections
from bcedge.watch.outputs import OutputLayout
from bcedge.watch.progress import JsonFormatter
from bcedge.watch.state import OutputUnavailable, StateDB, StateError
from bcedge.testing.squares import jpeg_bytes, png_bytes, squares_image


def huge_png_header(width: int, height: int) -> bytes:
    """A well-formed PNG whose header claims ``width`` x ``height`` (the pixel data is not there)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


# -- completeness --------------------------------------------------------------------------------------

def test_tracker_big_backlog_is_returned_in_order_up_to_the_limit(tmp_path):
    clock = FakeClock()
    tracker = StabilityTracker(settle=1.0, clock=clock)
    paths = [tmp_path / f"{i:03d}.png" for i in range(50)]
    for path in paths:
        path.write_bytes(b"x")
        tracker.observe(path)
    clock.now = 1.0
    assert tracker.poll(limit=20) == paths[:20] and tracker.poll(limit=0) == []
    assert tracker.poll() == paths[20:] and len(tracker) == 0


def test_tracker_waits_until_unchanged_for_settle(tmp_path):
    clock = FakeClock()
    tracker = StabilityTracker(settle=1.0, clock=clock)
    path = tmp_path / "a.png"
    path.write_bytes(b"part")
    tracker.observe(path)
    clock.now = 0.9
    assert tracker.poll() == []
    with open(path, "ab") as handle:  # the writer goes on: the clock restarts
        handle.write(b"more")
    clock.now = 1.5
    assert tracker.poll() == []
    clock.now = 2.4
    assert tracker.poll() == []
    clock.now = 2.6
    assert tracker.poll() == [path]
    assert len(tracker) == 0


def test_tracker_trusts_a_rename_and_drops_vanished_files(tmp_path):
    clock = FakeClock()
    tracker = StabilityTracker(settle=60.0, clock=clock)
    done, gone = tmp_path / "done.png", tmp_path / "gone.png"
    done.write_bytes(b"x")
    gone.write_bytes(b"y")
    tracker.observe(gone)
    tracker.observe(done, renamed=True)
    gone.unlink()
    assert tracker.poll() == [done]
    assert len(tracker) == 1  # gone.png is only looked at again when due
    clock.now = 61.0
    assert tracker.poll() == [] and len(tracker) == 0


def test_precheck_names_each_kind_of_bad_file(tmp_path):
    good = png_bytes(squares_image(1, 1))
    webp = cv2.imencode(".webp", squares_image(2, 0, 64))[1].tobytes()
    cases = {
        "empty.png": (b"", EmptyFile, "zero bytes"),
        "text.png": (b"hello, not an image\n", NotAnImage, "not an image"),
        "cut.png": (good[: len(good) // 2], TruncatedImage, "truncated PNG"),
        "cut.jpg": (jpeg_bytes(squares_image(2, 0, 64))[:300], TruncatedImage, "truncated JPEG"),
        "cut.webp": (webp[:-10], TruncatedImage, "truncated WEBP"),
        "stub.webp": (b"RIFF\x10\x00", TruncatedImage, "truncated WEBP"),
        "stub.bmp": (b"BM\x10", TruncatedImage, "truncated BMP"),
    }
    for name, (data, error, words) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(error, match=words) as info:
            precheck(tmp_path / name)
        assert name in str(info.value)
    (tmp_path / "ok.png").write_bytes(good)
    (tmp_path / "ok.jpg").write_bytes(jpeg_bytes(squares_image(2, 0, 64)))
    (tmp_path / "ok.webp").write_bytes(webp)
    assert precheck(tmp_path / "ok.png") == "png" and precheck(tmp_path / "ok.jpg") == "jpeg"
    assert precheck(tmp_path / "ok.webp") == "webp"


def test_precheck_caps_pixels_from_the_header(tmp_path):
    from bcedge.runtime.sources import ImageTooLarge

    path = tmp_path / "huge.png"
    path.write_bytes(huge_png_header(40_000, 25_000))  # 1 gigapixel, 100 bytes
    with pytest.raises(ImageTooLarge, match="40000x25000"):
        precheck(path, max_pixels=500_000_000)
    assert precheck(path, max_pixels=None) == "png"


# -- state ------------------------------------------------------------------------------------------------

def test_state_transitions_and_crash_recovery(tmp_path):
    (tmp_path / "in").mkdir()
    img = tmp_path / "in" / "a.png"
    img.write_bytes(b"x")
    sig = signature(img)
    db = StateDB(tmp_path / "watch.db", tmp_path / "in")
    assert db.claim("a.png", sig, "h1") == 1
    scale = {"factor": 0.66, "method": "auto", "cell_px": 97.0, "cells": 12, "passes": 1, "note": ""}
    db.mark_done("a.png", {"RBC": 3}, 3, (32, 32), scale=scale, tile="416x320")
    row = db.lookup("a.png")
    assert row.final and row.same_file(sig) and row.counts == {"RBC": 3} and row.total == 3
    assert row.scale == scale and row.tile == "416x320"    # the summary's scale and cell_px columns come from here
    # a crash while processing b.png twice: the third start quarantines it instead of dying again
    for crashes_so_far in (0, 1, 2):
        assert db.claim("b.png", sig, "h2") == 1  # a crash is counted apart from read attempts
        assert db.lookup("b.png").crashes == crashes_so_far
        db.close()
        db = StateDB(tmp_path / "watch.db", tmp_path / "in")
        recovered = db.recover(max_attempts=3)
    assert recovered == {"redo": [], "quarantined": ["b.png"]}
    assert db.lookup("b.png").status == "quarantined" and db.lookup("b.png").error == "ProcessCrashed"
    assert [e["path"] for e in db.quarantine_events()] == ["b.png"]
    # a graceful release does not count as an attempt
    assert db.claim("c.png", sig, "h3") == 1
    db.release("c.png")
    assert db.claim("c.png", sig, "h3") == 1
    # new content under the same path starts over
    assert db.claim("b.png", sig, "other") == 1
    assert db.status_counts() == {"done": 1, "processing": 2}
    db.close()


def test_transient_attempts_are_counted_and_a_full_database_says_so(tmp_path):
    (tmp_path / "in").mkdir()
    img = tmp_path / "in" / "a.png"
    img.write_bytes(b"x")
    sig = signature(img)
    db = StateDB(tmp_path / "watch.db", tmp_path / "in")
    for attempt in (1, 2, 3):  # unreadable for now: pending again, the attempt remembered
        assert db.claim("a.png", sig, None) == attempt
        db.mark_retry("a.png", "PermissionError", "a.png: Permission denied")
        assert db.lookup("a.png").status == "pending"
    with db._lock:
        pages = db._db.execute("PRAGMA page_count").fetchone()[0]
        db._db.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(OutputUnavailable, match="database or disk is full") as caught:
        db.mark_done("a.png", {"RBC": 1}, 1, (4, 4), tiles=1, flags=["x" * 5000])
    assert "rollback" not in str(caught.value)
    assert db.lookup("a.png").status == "pending"  # nothing half-written
    db.close()


def test_an_older_state_database_gains_the_new_columns(tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "watch.db") as old:
        old.execute("CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, "
                    "sha256 TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, error TEXT, "
                    "message TEXT, counts TEXT, total INTEGER, width INTEGER, height INTEGER, updated REAL)")
        old.execute("INSERT INTO files(path, status, counts, total) VALUES ('a.png', 'done', '{\"RBC\": 2}', 2)")
    db = StateDB(tmp_path / "watch.db", tmp_path)
    row = db.lookup("a.png")
    assert row.counts == {"RBC": 2} and row.crashes == 0 and row.flags == [] and row.tiles is None
    assert row.scale is None and row.tile is None
    db.close()


def test_state_refuses_another_input_folder(tmp_path):
    StateDB(tmp_path / "watch.db", tmp_path / "one").close()
    with pytest.raises(StateError, match="another input folder"):
        StateDB(tmp_path / "watch.db", tmp_path / "two")


def test_corrupt_state_database_is_a_named_error(tmp_path):
    (tmp_path / "watch.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="watch.db: state database unusable"):
        StateDB(tmp_path / "watch.db", tmp_path)


# -- outputs, discovery, logs -------------------------------------------------------------------------------

def test_stale_temporaries_of_every_writer_are_swept_without_knowing_who_wrote_them(tmp_path):
    from bcedge.report.overlay import write_overlay

    layout = OutputLayout(tmp_path / "out")
    result, overlay = layout.result("a/x.png"), layout.overlay("a/x.png")
    atomic_write_json(result, {"n": 1})
    write_overlay(overlay, squares_image(1, 0), Detections.empty(), ["RBC"])
    assert sorted(p.name for p in overlay.parent.iterdir()) == ["x.png.overlay.png"]
    stale = [temp_path(result), temp_path(overlay), temp_path(layout.summary_csv)]  # what a kill -9 leaves
    for path in stale:
        path.write_text("half")
    (layout.results / "a" / "y.png.json").write_text("{}")
    assert layout.remove_stale_temps() == 3
    assert not any(p.exists() for p in stale) and result.exists() and overlay.exists()


def test_filter_skips_temporary_hidden_and_out_dir(tmp_path):
    out = tmp_path / "out"
    filt = PathFilter(tmp_path, exclude=out, recursive=True, ignore=("*.xml",))
    names = ["a.png", "sub/b.jpg", "c.png.part", "d.tmp", "e.png~", ".hidden.png", ".dir/f.png", "out/results/g.png",
             "meta.xml", "~$lock.png"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert sorted(filt.relative(p) for p in scan(tmp_path, filt)) == ["a.png", "sub/b.jpg"]
    flat = PathFilter(tmp_path, exclude=out, recursive=False)
    assert [flat.relative(p) for p in scan(tmp_path, flat)] == ["a.png", "meta.xml"]
    assert is_temp_name("x.crdownload") and not is_temp_name("x.png")


def test_json_log_lines_carry_fields():
    import logging

    record = logging.LogRecord("bcedge.watch", logging.WARNING, __file__, 1, "bad file", None, None)
    record.fields = {"event": "quarantined", "path": "a.png", "error": "EmptyFile"}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "warning" and entry["event"] == "quarantined" and entry["error"] == "EmptyFile"
    assert entry["message"] == "bad file" and entry["time"].endswith("+00:00")


def test_watch_imports_without_torch():
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"
            "import bcedge.watch, bcedge.watch.service, bcedge.watch.processor, bcedge.watch.summary\n"
            "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
