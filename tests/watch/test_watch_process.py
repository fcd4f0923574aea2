"""``bcedge watch`` as a real process (stub counter): kill -9 and restart, signals, exit codes."""
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter as Tally
from pathlib import Path

import pytest

from test_watch_service import check_summary_agrees, done_count, results, wait_for
from bcedge.testing.squares import write_burst

STUB_CLI = ["-m", "bcedge.testing.stub_cli"]   # the bcedge CLI with the stub counter
_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_leftover_services():
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def start(in_dir: Path, out_dir: Path, *options: str, env: dict | None = None) -> subprocess.Popen:
    cmd = [sys.executable, *STUB_CLI, "watch", str(in_dir), "--out", str(out_dir), "--quiet", *options]
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _STARTED.append(proc)
    return proc


def statuses(out_dir: Path) -> dict[str, int]:
    if not (out_dir / "watch.db").exists():
        return {}
    try:
        with sqlite3.connect(out_dir / "watch.db", timeout=10) as db:
            return dict(db.execute("SELECT status, COUNT(*) FROM files GROUP BY status").fetchall())
    except sqlite3.OperationalError:  # the service is still creating it
        return {}


def started(out_dir: Path) -> int:
    """How many times the service has started (and recovered what a kill left) in OUT_DIR."""
    log = out_dir / "watch.log"
    return log.read_text().count('"event": "start"') if log.exists() else 0


def test_kill_9_mid_burst_then_restart_loses_nothing_and_doubles_nothing(tmp_path):
    in_dir, out_dir, calls = tmp_path / "in", tmp_path / "out", tmp_path / "calls.txt"
    in_dir.mkdir()
    env = {"WATCH_STUB_CALLS": str(calls)}
    proc = start(in_dir, out_dir, "--model", "stub:delay=0.004", "--settle", "0.2", env=env)
    wait_for(lambda: (out_dir / "watch.log").exists(), timeout=30)
    expected = write_burst(in_dir, 1000)
    wait_for(lambda: done_count(out_dir) >= 300, timeout=60)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    killed_at = done_count(out_dir)
    assert 300 <= killed_at < 1000, "the kill should land mid-burst"
    restart = start(in_dir, out_dir, "--once", "--settle", "0.1", env=env)
    out, err = restart.communicate(timeout=120)
    assert restart.returncode == 0, err
    assert statuses(out_dir) == {"done": 1000}
    found = results(out_dir)
    assert sorted(found) == sorted(expected)
    for name, (red, blue) in expected.items():
        assert (found[name]["counts"]["RBC"], found[name]["counts"]["WBC"]) == (red, blue)
    summary = check_summary_agrees(out_dir)
    assert len(summary["images"]) == 1000 and summary["total"] == sum(r + b for r, b in expected.values())
    # only the files in flight at the kill (at most one per worker) were counted a second time
    per_file = Tally(Path(line).name for line in calls.read_text().splitlines())
    assert set(per_file) == set(expected) and max(per_file.values()) <= 2
    assert sum(per_file.values()) - 1000 <= 2


def test_sigterm_finishes_the_file_in_flight_and_a_restart_completes(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    expected = write_burst(in_dir, 40)
    proc = start(in_dir, out_dir, "--model", "stub:delay=0.1", "--settle", "0.1")
    wait_for(lambda: done_count(out_dir) >= 4, timeout=30)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    state = statuses(out_dir)
    assert "processing" not in state and state["done"] < 40
    assert sorted(results(out_dir)) == sorted(k for k in expected if k in results(out_dir))
    check_summary_agrees(out_dir)
    restart = start(in_dir, out_dir, "--once", "--settle", "0.1")
    assert restart.wait(timeout=60) == 0 and statuses(out_dir) == {"done": 40}


def test_second_sigint_rolls_back_at_once(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    write_burst(in_dir, 3)
    proc = start(in_dir, out_dir, "--model", "stub:delay=20", "--settle", "0.1", "--workers", "1")
    wait_for(lambda: statuses(out_dir).get("processing") == 1, timeout=30)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    assert proc.poll() is None  # the first signal waits for the file in flight
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130 and time.monotonic() - started < 5
    assert statuses(out_dir) == {"pending": 1}  # rolled back: the next start redoes it
    assert "rolled back" in (out_dir / "watch.log").read_text()


def test_usage_errors_exit_2_with_a_message(tmp_path):
    proc = start(tmp_path / "missing", tmp_path / "out", "--once")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "missing: no such input folder" in err


def test_a_second_sigterm_while_native_code_runs_exits_143_not_sigabrt(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    write_burst(in_dir, 3)
    proc = start(in_dir, out_dir, "--model", "stub:delay=30,native=1", "--settle", "0.1", "--workers", "2")
    wait_for(lambda: statuses(out_dir).get("processing", 0) >= 1, timeout=30)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err  # was SIGABRT (134): "terminate called without an active exception"
    assert "terminate called" not in err
    assert "processing" not in statuses(out_dir)  # rolled back: a restart redoes them


def test_repeated_kills_do_not_quarantine_the_files_that_happened_to_be_in_flight(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    expected = write_burst(in_dir, 12)
    for run in range(1, 5):  # each kill lands while files are being counted
        proc = start(in_dir, out_dir, "--model", "stub:delay=0.5", "--settle", "0.05")
        wait_for(lambda: started(out_dir) == run and statuses(out_dir).get("processing", 0) >= 1, timeout=30)
        proc.kill()
        proc.wait(timeout=10)
    restart = start(in_dir, out_dir, "--once", "--settle", "0.05")
    out, err = restart.communicate(timeout=120)
    assert restart.returncode == 0, err
    assert statuses(out_dir) == {"done": 12}
    assert sorted(results(out_dir)) == sorted(expected)
    assert (out_dir / "quarantine.jsonl").read_text() == ""
