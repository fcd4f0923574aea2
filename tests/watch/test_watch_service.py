"""The folder service in-process with the stub counter: bursts, bad inputs, slow writers, replacements."""
import csv
import hashlib
import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from bcedge.atomic import is_temp
from bcedge.watch import ExitCode, WatchConfig, WatchService, run_watch
from bcedge.watch.state import StateDB
from test_watch_parts import huge_png_header
from bcedge.testing.squares import StubCounter, jpeg_bytes, png_bytes, squares_image, write_burst


def once(in_dir, out_dir, counter=None, **options) -> ExitCode:
    options.setdefault("settle", 0.1)
    options.setdefault("retry_delay", 0.05)
    return run_watch(counter or StubCounter(), WatchConfig(in_dir, out_dir, once=True, **options), show_status=False)


@contextmanager
def live(in_dir, out_dir, counter, **options):
    """The service running in a thread (events unless ``poll=True``); stopped and joined on exit."""
    options.setdefault("settle", 0.3)
    service = WatchService(counter, WatchConfig(in_dir, out_dir, **options), show_status=False)
    codes = []
    thread = threading.Thread(target=lambda: codes.append(service.run()), daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.request_stop()
        thread.join(timeout=30)
    assert not thread.is_alive() and codes == [ExitCode.TERMINATED]


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def done_count(out_dir: Path) -> int:
    if not (out_dir / "watch.db").exists():
        return 0
    import sqlite3

    try:
        with sqlite3.connect(out_dir / "watch.db", timeout=10) as db:
            return db.execute("SELECT COUNT(*) FROM files WHERE status='done'").fetchone()[0]
    except sqlite3.OperationalError:  # the service is still creating it
        return 0


def results(out_dir: Path) -> dict[str, dict]:
    root = out_dir / "results"
    return {p.relative_to(root).as_posix()[: -len(".json")]: json.loads(p.read_text()) for p in root.rglob("*.json")}


def check_summary_agrees(out_dir: Path) -> dict:
    """summary.json and summary.csv say exactly what the per-image result files say."""
    per_file = results(out_dir)
    summary = json.loads((out_dir / "summary.json").read_text())
    assert {img["path"]: img["counts"] for img in summary["images"]} == {k: v["counts"] for k, v in per_file.items()}
    assert {img["path"]: (img.get("scale"), img.get("tile")) for img in summary["images"]} == {
        k: (v.get("scale"), v.get("tile")) for k, v in per_file.items()}
    assert len(summary["images"]) == len(per_file)
    assert summary["total"] == sum(v["total"] for v in per_file.values())
    with open(out_dir / "summary.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["status"] == "done"]
    assert {r["path"]: int(r["total"]) for r in rows} == {k: v["total"] for k, v in per_file.items()}
    assert not [p for p in out_dir.rglob("*") if is_temp(p)]
    return summary


def quarantine_lines(out_dir: Path) -> dict[str, dict]:
    lines = (out_dir / "quarantine.jsonl").read_text().splitlines()
    return {entry["path"]: entry for entry in map(json.loads, lines)}


def test_burst_of_1000_files_gives_1000_results(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    counter = StubCounter()
    with live(in_dir, out_dir, counter, settle=0.2):
        expected = write_burst(in_dir, 1000)  # lands while the service watches
        wait_for(lambda: done_count(out_dir) == 1000, timeout=60)
    found = results(out_dir)
    assert sorted(found) == sorted(expected)
    for name, (red, blue) in expected.items():
        assert found[name]["counts"] == {"RBC": red, "WBC": blue, "Platelets": 0}
        assert found[name]["model"]["arch"] == "stub_squares" and found[name]["file"]["sha256"]
    assert sorted(path for path, _ in counter.calls) == sorted(str(in_dir / n) for n in expected)  # none doubled
    summary = check_summary_agrees(out_dir)
    assert summary["totals"] == {"RBC": sum(r for r, _ in expected.values()),
                                 "WBC": sum(b for _, b in expected.values()), "Platelets": 0}
    # a restart finds everything done: nothing is counted again
    assert once(in_dir, out_dir, counter) == ExitCode.OK and len(counter.calls) == 1000


def test_each_kind_of_bad_input_is_quarantined_and_the_service_goes_on(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    good = png_bytes(squares_image(2, 1))
    noisy = np.random.default_rng(0).integers(150, 200, (64, 64, 3), dtype=np.uint8)
    corrupt = bytearray(png_bytes(noisy))
    corrupt[len(corrupt) // 2: len(corrupt) // 2 + 64] = bytes(64)  # damaged pixel data, header and IEND intact
    files = {
        "good.png": good,
        "truncated.png": good[: len(good) // 2],
        "truncated.jpg": jpeg_bytes(squares_image(3, 0, 64))[:400],
        "corrupt.png": bytes(corrupt),
        "empty.png": b"",
        "notes.txt": b"not an image at all\n",
        "huge.png": huge_png_header(40_000, 25_000),
    }
    for name, data in files.items():
        (in_dir / name).write_bytes(data)
    assert once(in_dir, out_dir) == ExitCode.PARTIAL
    bad = quarantine_lines(out_dir)
    assert {k: v["error"] for k, v in bad.items()} == {
        "truncated.png": "TruncatedImage", "truncated.jpg": "TruncatedImage", "corrupt.png": "ImageReadError",
        "empty.png": "EmptyFile", "notes.txt": "NotAnImage", "huge.png": "ImageTooLarge"}
    for name, entry in bad.items():
        assert name in entry["message"] and entry["sha256"] and entry["time"]
    assert "40000x25000" in bad["huge.png"]["message"]
    assert list(results(out_dir)) == ["good.png"]
    summary = check_summary_agrees(out_dir)
    assert len(summary["failed"]) == 6 and summary["totals"]["RBC"] == 2
    # quarantined content is not retried, and the log holds each exactly once after a restart
    assert once(in_dir, out_dir) == ExitCode.OK
    assert len((out_dir / "quarantine.jsonl").read_text().splitlines()) == 6


def test_unreadable_file_is_quarantined(tmp_path, monkeypatch):
    import bcedge.watch.processor as processor

    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    (in_dir / "locked.png").write_bytes(png_bytes(squares_image(1, 0)))
    (in_dir / "fine.png").write_bytes(png_bytes(squares_image(1, 0)))
    real = processor.sha256_file

    def sha256_file(path, *args):
        if path.name == "locked.png":  # what chmod 000 does for anyone but root
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args)

    monkeypatch.setattr(processor, "sha256_file", sha256_file)
    assert once(in_dir, out_dir) == ExitCode.PARTIAL
    entry = quarantine_lines(out_dir)["locked.png"]
    assert entry["error"] == "PermissionError" and "locked.png" in entry["message"]
    assert list(results(out_dir)) == ["fine.png"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_by_permissions(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    (in_dir / "locked.png").write_bytes(png_bytes(squares_image(1, 0)))
    (in_dir / "locked.png").chmod(0)
    assert once(in_dir, out_dir) == ExitCode.PARTIAL
    assert quarantine_lines(out_dir)["locked.png"]["error"] == "PermissionError"


def write_slowly(path: Path, data: bytes, chunks: int, pause: float) -> None:
    step = -(-len(data) // chunks)
    with open(path, "wb") as handle:
        for start in range(0, len(data), step):
            handle.write(data[start:start + step])
            handle.flush()
            time.sleep(pause)


def slow_image() -> bytes:
    pixels = np.random.default_rng(1).integers(150, 200, (256, 256, 3), dtype=np.uint8)  # noise: a big PNG
    pixels[10:14, 10:14] = (230, 20, 20)
    pixels[40:44, 40:44] = (20, 20, 230)
    return png_bytes(pixels)


@pytest.mark.parametrize("poll", [False, True], ids=["events", "polling"])
def test_file_written_slowly_in_chunks_is_read_once_complete(tmp_path, poll):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    data = slow_image()
    counter = StubCounter()
    with live(in_dir, out_dir, counter, settle=0.5, poll=poll, poll_interval=0.1):
        write_slowly(in_dir / "slow.png", data, chunks=8, pause=0.15)
        wait_for(lambda: done_count(out_dir) == 1)
    assert counter.calls == [(str(in_dir / "slow.png"), hashlib.sha256(data).hexdigest())]
    assert (out_dir / "quarantine.jsonl").read_text() == ""  # never seen half-written
    assert results(out_dir)["slow.png"]["counts"] == {"RBC": 1, "WBC": 1, "Platelets": 0}


def test_rename_from_a_temporary_name_is_taken_at_once(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    data = slow_image()
    counter = StubCounter()
    with live(in_dir, out_dir, counter, settle=30.0):  # stability alone would take 30 s
        write_slowly(in_dir / "scan.png.part", data, chunks=4, pause=0.05)
        started = time.monotonic()
        os.replace(in_dir / "scan.png.part", in_dir / "scan.png")
        wait_for(lambda: done_count(out_dir) == 1, timeout=10)
        assert time.monotonic() - started < 10
    assert counter.calls == [(str(in_dir / "scan.png"), hashlib.sha256(data).hexdigest())]


def test_replaced_content_is_processed_again_touched_content_is_not(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    for name, red in (("a.png", 1), ("b.png", 2), ("c.png", 3)):
        (in_dir / name).write_bytes(png_bytes(squares_image(red, 0)))
    counter = StubCounter()
    assert once(in_dir, out_dir, counter) == ExitCode.OK and len(counter.calls) == 3
    (in_dir / "a.png").write_bytes(png_bytes(squares_image(4, 2)))       # new content
    os.utime(in_dir / "b.png", (time.time() + 5, time.time() + 5))        # same content, new mtime
    (in_dir / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken now")        # good file replaced by a bad one
    assert once(in_dir, out_dir, counter) == ExitCode.PARTIAL
    assert sorted(Path(p).name for p, _ in counter.calls) == ["a.png", "a.png", "b.png", "c.png"]
    found = results(out_dir)
    assert found["a.png"]["counts"]["RBC"] == 4 and found["a.png"]["counts"]["WBC"] == 2
    assert "c.png" not in found  # its old result must not outlive it
    assert quarantine_lines(out_dir)["c.png"]["error"] == "TruncatedImage"
    summary = check_summary_agrees(out_dir)
    assert len(summary["images"]) == 2 and summary["totals"]["RBC"] == 6


def test_recursive_with_out_dir_inside_in_dir_and_overlays(tmp_path):
    in_dir = tmp_path / "in"
    out_dir = in_dir / "results_here"
    (in_dir / "day1").mkdir(parents=True)
    (in_dir / "top.png").write_bytes(png_bytes(squares_image(1, 1)))
    (in_dir / "day1" / "x.png").write_bytes(png_bytes(squares_image(2, 0)))
    (in_dir / "day1" / "y.png.part").write_bytes(b"half")
    (in_dir / ".hidden.png").write_bytes(b"nope")
    assert once(in_dir, out_dir, overlays=True, recursive=True) == ExitCode.OK
    assert sorted(results(out_dir)) == ["day1/x.png", "top.png"]
    assert (out_dir / "quarantine.jsonl").read_text() == ""  # its own outputs were never taken as inputs
    from bcedge.imageio import read_image

    overlay = out_dir / results(out_dir)["day1/x.png"]["overlay"]
    assert overlay == out_dir / "overlays" / "day1" / "x.png.overlay.png" and read_image(overlay).shape == (32, 32, 3)
    assert once(in_dir, out_dir, recursive=True) == ExitCode.OK  # a rerun finds its own outputs no input


def test_second_service_on_the_same_out_dir_is_refused(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    with live(in_dir, out_dir, StubCounter()):
        wait_for(lambda: (out_dir / "watch.db").exists())
        assert once(in_dir, out_dir) == ExitCode.STATE
    assert "another bcedge watch" in (out_dir / "watch.log").read_text()


def test_a_broken_counter_stops_the_service_and_is_retried_later(tmp_path):
    class Broken(StubCounter):
        def count_file(self, path):
            raise RuntimeError("backend exploded")

    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    write_burst(in_dir, 8)
    assert once(in_dir, out_dir, Broken(), workers=1) == ExitCode.ABORTED
    db = StateDB(out_dir / "watch.db", in_dir.resolve())
    counts = db.status_counts()
    assert set(counts) == {"failed"} and 5 <= counts["failed"] < 8  # 5 in a row, plus the one in flight
    db.close()
    assert once(in_dir, out_dir) == ExitCode.OK  # a fixed counter picks them all up
    assert len(results(out_dir)) == 8


def test_with_the_runtime_counter_and_its_own_errors(tmp_path):
    from bcedge.testing.squares import real_counter

    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    expected = write_burst(in_dir, 12)
    # a JPEG header claiming 20000x20000: under the service cap, refused by the runtime's whole-decode cap
    big = bytearray(jpeg_bytes(squares_image(1, 0)))
    sof = big.index(b"\xff\xc0")
    big[sof + 5: sof + 9] = (20000).to_bytes(2, "big") * 2
    (in_dir / "big.jpg").write_bytes(bytes(big))
    assert once(in_dir, out_dir, real_counter()) == ExitCode.PARTIAL
    found = results(out_dir)
    assert sorted(found) == sorted(expected)
    for name, (red, blue) in expected.items():
        assert (found[name]["counts"]["RBC"], found[name]["counts"]["WBC"]) == (red, blue)
        assert found[name]["width"] == 32 and found[name]["model"]["arch"] == "squares"
    assert quarantine_lines(out_dir)["big.jpg"]["error"] == "ImageTooLarge"
    check_summary_agrees(out_dir)
