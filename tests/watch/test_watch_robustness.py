"""What a lab's disks and file names do to the service: names that are not UTF-8, a full output disk,
files unreadable for a while, writers that pause. Nothing is lost and the service keeps going."""
import errno
import hashlib
import json
import os
import threading
import time

import pytest

import bcedge.atomic
import bcedge.watch.processor as processor
from bcedge.watch import ExitCode
from bcedge.watch.state import StateDB
from test_watch_service import (check_summary_agrees, done_count, live, once, quarantine_lines, results, slow_image,
                                wait_for)
from bcedge.testing.squares import StubCounter, png_bytes, squares_image, write_burst


def write_bytes_named(folder, name: bytes, data: bytes) -> None:
    with open(os.path.join(os.fsencode(folder), name), "wb") as handle:
        handle.write(data)


def log_events(out_dir) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "watch.log").read_text(encoding="utf-8").splitlines()]


# -- 1: names are bytes ---------------------------------------------------------------------------------

def test_names_that_are_not_utf8_are_counted_and_shown_escaped_at_the_startup_scan(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    good = png_bytes(squares_image(2, 1))
    write_bytes_named(in_dir, b"smear\xff.png", good)
    write_bytes_named(in_dir, b"cut\xfe.png", good[: len(good) // 2])
    (in_dir / "fine.png").write_bytes(png_bytes(squares_image(1, 0)))
    assert once(in_dir, out_dir) == ExitCode.PARTIAL
    found = results(out_dir)
    assert sorted(found) == ["fine.png", "smear\\xff.png"]
    assert found["smear\\xff.png"]["counts"]["RBC"] == 2 and found["smear\\xff.png"]["path"] == "smear\\xff.png"
    bad = quarantine_lines(out_dir)["cut\\xfe.png"]
    assert bad["error"] == "TruncatedImage" and "cut\\xfe.png" in bad["message"]
    check_summary_agrees(out_dir)
    assert "smear\\xff.png" in (out_dir / "summary.csv").read_text(encoding="utf-8")
    log_events(out_dir)  # every line is UTF-8 JSON
    assert once(in_dir, out_dir) == ExitCode.OK  # and the service restarts with them there


def test_a_name_that_is_not_utf8_dropped_mid_run_does_not_stop_the_service(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    with live(in_dir, out_dir, StubCounter(), settle=0.2):
        write_bytes_named(in_dir, b"late\xe9.png", png_bytes(squares_image(3, 0)))
        write_burst(in_dir, 3)
        wait_for(lambda: done_count(out_dir) == 4)
    assert results(out_dir)["late\\xe9.png"]["counts"]["RBC"] == 3


# -- 2: a full or read-only output --------------------------------------------------------------------------

class FullDisk:
    """Makes every atomic write, and the state database, fail with 'no space' while ``full`` is set."""

    def __init__(self, monkeypatch) -> None:
        self.full = threading.Event()
        self.state = None
        real = bcedge.atomic._publish

        def publish(tmp, path, durable):
            if self.full.is_set():
                raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
            return real(tmp, path, durable)

        monkeypatch.setattr(bcedge.atomic, "_publish", publish)

    def fill(self, state: StateDB | None = None) -> None:
        self.full.set()
        self.state = state
        if state is not None:
            with state._lock:
                pages = state._db.execute("PRAGMA page_count").fetchone()[0]
                state._db.execute(f"PRAGMA max_page_count={pages}")

    def free(self) -> None:
        self.full.clear()
        if self.state is not None:
            with self.state._lock:
                self.state._db.execute("PRAGMA max_page_count=1073741823")


def test_a_full_output_disk_pauses_the_service_and_it_resumes_losing_nothing(tmp_path, monkeypatch):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    disk = FullDisk(monkeypatch)
    with live(in_dir, out_dir, StubCounter(), settle=0.1, output_retry=0.1) as service:
        for i in range(4):
            (in_dir / f"before_{i}.png").write_bytes(png_bytes(squares_image(1, 0)))
        wait_for(lambda: done_count(out_dir) == 4)
        disk.fill(service.state)
        for i in range(6):
            (in_dir / f"during_{i}.png").write_bytes(png_bytes(squares_image(2, 1)))
        wait_for(lambda: any(e.get("event") == "output_blocked" for e in log_events(out_dir)))
        time.sleep(1.0)  # several retries while full
        assert done_count(out_dir) == 4
        disk.free()
        wait_for(lambda: done_count(out_dir) == 10)
    events = log_events(out_dir)
    blocked = [e for e in events if e.get("event") == "output_blocked"]
    assert len(blocked) == 1 and "No space left on device" in blocked[0]["error"]  # the real error, once
    assert any(e.get("event") == "output_resumed" for e in events)
    assert not any("cannot rollback" in json.dumps(e) for e in events)
    db = StateDB(out_dir / "watch.db", in_dir.resolve())
    assert db.status_counts() == {"done": 10}  # nothing quarantined or failed
    db.close()
    assert (out_dir / "quarantine.jsonl").read_text() == ""
    assert len(check_summary_agrees(out_dir)["images"]) == 10


def test_an_output_full_at_start_is_waited_for(tmp_path, monkeypatch):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    write_burst(in_dir, 3)
    disk = FullDisk(monkeypatch)
    disk.fill()
    threading.Timer(1.0, disk.free).start()
    started = time.monotonic()
    assert once(in_dir, out_dir, output_retry=0.1) == ExitCode.OK
    assert time.monotonic() - started >= 1.0 and len(results(out_dir)) == 3


# -- 4, 6: transient causes are retried --------------------------------------------------------------------

@pytest.fixture
def locked(monkeypatch):
    """Names in the returned set read as PermissionError (what chmod 000 does for anyone but root)."""
    names: set[str] = set()
    real_sha, real_readable = processor.sha256_file, processor.readable

    def sha256_file(path, *args):
        if path.name in names:
            raise PermissionError(13, "Permission denied", str(path))
        return real_sha(path, *args)

    monkeypatch.setattr(processor, "sha256_file", sha256_file)
    monkeypatch.setattr(processor, "readable", lambda path: path.name not in names and real_readable(path))
    return names


def test_a_file_quarantined_as_unreadable_is_counted_once_its_permissions_are_fixed(tmp_path, locked):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    (in_dir / "locked.png").write_bytes(png_bytes(squares_image(2, 0)))
    locked.add("locked.png")
    assert once(in_dir, out_dir) == ExitCode.PARTIAL
    assert quarantine_lines(out_dir)["locked.png"]["error"] == "PermissionError"
    locked.clear()  # chmod: size, mtime and inode stay the same
    assert once(in_dir, out_dir) == ExitCode.OK
    assert results(out_dir)["locked.png"]["counts"]["RBC"] == 2
    assert (out_dir / "quarantine.jsonl").read_text() == ""


def test_a_permission_error_that_clears_is_retried_without_quarantine(tmp_path, locked):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    (in_dir / "late.png").write_bytes(png_bytes(squares_image(1, 1)))
    locked.add("late.png")
    threading.Timer(0.3, locked.clear).start()
    assert once(in_dir, out_dir, retry_delay=0.2) == ExitCode.OK
    assert "late.png" in results(out_dir) and (out_dir / "quarantine.jsonl").read_text() == ""


def test_a_writer_pausing_longer_than_settle_leaves_no_quarantine_line(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    data = slow_image()
    counter = StubCounter()
    with live(in_dir, out_dir, counter, settle=0.2, poll=True, poll_interval=0.05, retry_delay=0.3):
        with open(in_dir / "paused.png", "wb") as handle:
            handle.write(data[: len(data) // 2])
            handle.flush()
            time.sleep(1.2)  # six times the settle time: looks complete, is cut short
            handle.write(data[len(data) // 2:])
        wait_for(lambda: done_count(out_dir) == 1)
    assert counter.calls == [(str(in_dir / "paused.png"), hashlib.sha256(data).hexdigest())]
    assert (out_dir / "quarantine.jsonl").read_text() == ""


def test_a_cut_file_that_stays_cut_is_quarantined_after_its_retries_and_counted_when_finished(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    data = png_bytes(squares_image(3, 0))
    (in_dir / "cut.png").write_bytes(data[:-20])
    assert once(in_dir, out_dir) == ExitCode.PARTIAL
    assert quarantine_lines(out_dir)["cut.png"]["error"] == "TruncatedImage"
    db = StateDB(out_dir / "watch.db", in_dir.resolve())
    assert db.lookup("cut.png").status == "quarantined"
    db.close()
    (in_dir / "cut.png").write_bytes(data)  # its writer finished at last
    assert once(in_dir, out_dir) == ExitCode.OK
    assert (out_dir / "quarantine.jsonl").read_text() == "" and results(out_dir)["cut.png"]["counts"]["RBC"] == 3


def test_a_state_database_that_cannot_be_opened_for_now_is_waited_for(tmp_path, monkeypatch):
    import bcedge.watch.service as service
    from bcedge.watch.state import OutputUnavailable

    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    write_burst(in_dir, 2)
    tries = []

    def state_db(path, in_dir):  # a restart while OUT_DIR is still full
        tries.append(time.monotonic())
        if len(tries) < 3:
            raise OutputUnavailable(f"{path}: database or disk is full")
        return StateDB(path, in_dir)

    monkeypatch.setattr(service, "StateDB", state_db)
    assert once(in_dir, out_dir, output_retry=0.1) == ExitCode.OK and len(tries) == 3
    assert len(results(out_dir)) == 2
    assert sum(e.get("event") == "output_blocked" for e in log_events(out_dir)) == 1


def test_a_state_database_in_a_vanished_folder_is_an_output_problem_not_a_corrupt_file(tmp_path):
    from bcedge.watch.state import OutputUnavailable

    with pytest.raises(OutputUnavailable, match="unable to open database file"):
        StateDB(tmp_path / "unmounted" / "watch.db", tmp_path)
