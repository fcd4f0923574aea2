"""Soak test of the folder service: a burst of files, random kill -9 and restarts, and a full output
disk for a minute in the middle. Nothing may be lost, doubled or quarantined.

``bcedge watch`` runs in child processes (so each kill is a real SIGKILL) with a model-free counter
(``bcedge.testing.stub_cli``: coloured squares, a fixed delay per file in place of a model): what is
measured is the service's bookkeeping, not a model. OUT_DIR is a small tmpfs in a private mount
namespace (Linux; root, or ``unshare`` with user namespaces), so the disk really fills: a filler
file takes all its free space for ``--full-seconds``, then goes.

Recorded: files in, result files, summary rows, duplicates (a file with two results or rows),
lost (a file with none), quarantined, wrong counts, files counted more than once (a kill landed
while they were being counted: redone, one result), the service's pause and resume log lines, and
that a final restart counts nothing again. Not CI (minutes, needs a mount namespace):

    python benchmarks/watch_soak.py                # 2,000 files, 20 kills, 60 s full: ~3 minutes on 2 CPUs

Writes ``benchmarks/results/watch_soak_<machine>.{json,md}``.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bcedge.bench.machine import describe_machine, machine_line, machine_slug  # noqa: E402

SERVICE = ["-m", "bcedge.testing.stub_cli"]   # the bcedge CLI with the model-free stub counter


def squares_png(red: int, blue: int, seed: int) -> bytes:
    """A 48x48 PNG with ``red`` red and ``blue`` blue 4x4 squares; ``seed`` makes each file's bytes its own."""
    image = np.full((48, 48, 3), 200, np.uint8)
    image[0, 0] = (seed % 256, (seed // 256) % 256, 120)
    cells = [(x, y) for y in range(4, 44, 8) for x in range(4, 44, 8)]
    for i, (x, y) in enumerate(cells[: red + blue]):
        image[y:y + 4, x:x + 4] = (230, 20, 20) if i < red else (20, 20, 230)
    ok, data = cv2.imencode(".png", image[:, :, ::-1])
    assert ok
    return data.tobytes()


def write_burst(in_dir: Path, n: int) -> dict[str, tuple[int, int]]:
    expected = {}
    for i in range(n):
        red, blue = i % 7, (i // 7) % 4
        name = f"smear_{i:05d}.png"
        tmp = in_dir / f".{name}.part"
        tmp.write_bytes(squares_png(red, blue, i))
        os.replace(tmp, in_dir / name)  # how scanners and copy tools deliver: renamed into place
        expected[name] = (red, blue)
    return expected


class Disk:
    """OUT_DIR on its own small tmpfs; ``fill`` takes every free byte, ``free`` gives them back."""

    def __init__(self, mount: Path, size_mb: int) -> None:
        self.mount, self.filler = mount, mount.parent / "filler-mount"
        mount.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mount)], check=True)
        self.filler_path = mount / "filler.bin"

    def fill(self) -> int:
        written = 0
        block = b"\0" * (1 << 20)
        with open(self.filler_path, "wb", buffering=0) as handle:
            for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):  # down to the last crumbs
                try:
                    while True:
                        written += handle.write(block[:size])
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
        return written

    def free(self) -> None:
        self.filler_path.unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.mount)], check=False)

    def used_mb(self) -> float:
        stat = os.statvfs(self.mount)
        return round((stat.f_blocks - stat.f_bfree) * stat.f_frsize / 2**20, 1)


def stub_env(calls: Path) -> dict[str, str]:
    """The child's environment: this checkout importable, and where the stub counter logs each file it reads."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "WATCH_STUB_CALLS": str(calls)}


def start_service(in_dir: Path, out_dir: Path, delay: float, calls: Path, log) -> subprocess.Popen:
    cmd = [sys.executable, *SERVICE, "watch", str(in_dir), "--out", str(out_dir), "--model",
           f"stub:delay={delay}", "--settle", "0.2", "--quiet"]
    proc = subprocess.Popen(cmd, env=stub_env(calls), stdout=log, stderr=log)
    _RUNNING.append(proc)
    return proc


def done_rows(out_dir: Path) -> int:
    try:
        with sqlite3.connect(f"file:{out_dir / 'watch.db'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM files WHERE status='done'").fetchone()[0]
    except sqlite3.Error:
        return -1


def soak(args, work: Path) -> dict:
    in_dir, out_dir, calls = work / "in", work / "out", work / "calls.txt"
    in_dir.mkdir()
    disk = Disk(out_dir, args.disk_mb)
    try:
        return _soak(args, work, in_dir, out_dir, calls, disk)
    finally:
        for proc in _RUNNING:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        if args.work is not None:  # the tmpfs goes with the namespace: keep a copy to look at
            shutil.copytree(out_dir, work / "out-copy", dirs_exist_ok=True, ignore=shutil.ignore_patterns("filler.bin"))
        disk.unmount()


_RUNNING: list[subprocess.Popen] = []


def _soak(args, work: Path, in_dir: Path, out_dir: Path, calls: Path, disk: Disk) -> dict:
    rng = random.Random(args.seed)
    log = open(work / "service-stderr.txt", "w")
    started = time.monotonic()
    kill_at = sorted(rng.uniform(2.0, args.kill_window) for _ in range(args.kills))
    full_from = args.full_at
    events: list[dict] = []
    proc = start_service(in_dir, out_dir, args.delay, calls, log)
    time.sleep(1.0)
    expected = write_burst(in_dir, args.files)
    events.append({"t": round(time.monotonic() - started, 1), "event": "burst written", "files": len(expected)})
    full_state = "before"
    exit_codes = []
    while kill_at or full_state != "after":
        now = time.monotonic() - started
        if full_state == "before" and now >= full_from:
            filled = disk.fill()
            full_state, full_until = "full", now + args.full_seconds
            events.append({"t": round(now, 1), "event": "disk full", "filler_mb": round(filled / 2**20, 1),
                           "done_rows": done_rows(out_dir)})
        elif full_state == "full" and now >= full_until:
            disk.free()
            full_state = "after"
            events.append({"t": round(now, 1), "event": "disk freed", "done_rows": done_rows(out_dir)})
        if kill_at and now >= kill_at[0]:
            kill_at.pop(0)
            proc.send_signal(signal.SIGKILL)
            exit_codes.append(proc.wait(timeout=30))
            events.append({"t": round(now, 1), "event": "kill -9", "done_rows": done_rows(out_dir),
                           "disk": full_state})
            proc = start_service(in_dir, out_dir, args.delay, calls, log)
        if proc.poll() is not None:  # the service must never stop by itself
            exit_codes.append(proc.returncode)
            events.append({"t": round(now, 1), "event": "service exited by itself", "code": proc.returncode})
            proc = start_service(in_dir, out_dir, args.delay, calls, log)
        time.sleep(0.05)
    # let the last service finish the burst, then stop it as systemd would
    deadline, last, last_change = time.monotonic() + args.finish_timeout, -2, time.monotonic()
    while time.monotonic() < deadline:
        done = done_rows(out_dir)
        if done == len(expected):
            break
        if done != last:
            last, last_change = done, time.monotonic()
        elif time.monotonic() - last_change > 60:
            break
        time.sleep(0.5)
    time.sleep(1.0)  # the summary is rewritten when idle
    proc.send_signal(signal.SIGTERM)
    stop_code = proc.wait(timeout=60)
    events.append({"t": round(time.monotonic() - started, 1), "event": "SIGTERM", "code": stop_code})
    calls_before = len(calls.read_text(errors="surrogateescape").splitlines()) if calls.exists() else 0
    final = subprocess.run([sys.executable, *SERVICE, "watch", str(in_dir), "--out", str(out_dir), "--once",
                            "--quiet", "--model", "stub:delay=0"], env=stub_env(calls),
                           capture_output=True, text=True, timeout=300)
    calls_after = len(calls.read_text(errors="surrogateescape").splitlines())
    log.close()
    seconds = time.monotonic() - started
    outcome = tally(in_dir, out_dir, expected, calls)
    outcome.update({"final_once_exit_code": final.returncode, "counted_again_by_final_restart": calls_after - calls_before,
                    "sigterm_exit_code": stop_code, "kill_exit_codes": exit_codes, "seconds": round(seconds, 1),
                    "disk_used_mb_at_end": disk.used_mb()})
    stderr = (work / "service-stderr.txt").read_text(errors="replace")
    outcome["service_stderr_tracebacks"] = stderr.count("Traceback")
    outcome["service_stderr_lines_about_output"] = sum("output folder" in line for line in stderr.splitlines())
    return {"events": events, "outcome": outcome}


def tally(in_dir: Path, out_dir: Path, expected: dict[str, tuple[int, int]], calls: Path) -> dict:
    results = {p.relative_to(out_dir / "results").as_posix()[: -len(".json")]: json.loads(p.read_text())
               for p in (out_dir / "results").rglob("*.json")}
    summary = json.loads((out_dir / "summary.json").read_text())
    rows = Counter(img["path"] for img in summary["images"])
    with sqlite3.connect(out_dir / "watch.db") as db:
        statuses = dict(db.execute("SELECT status, COUNT(*) FROM files GROUP BY status").fetchall())
    wrong = [k for k, (red, blue) in expected.items() if k in results
             and (results[k]["counts"]["RBC"], results[k]["counts"]["WBC"]) != (red, blue)]
    per_file = Counter(Path(line).name for line in calls.read_text(errors="surrogateescape").splitlines())
    log, torn = [], 0
    for line in (out_dir / "watch.log").read_text(errors="replace").splitlines():
        try:
            log.append(json.loads(line))
        except ValueError:  # a line cut by a kill -9 or by the full disk: the log is best effort
            torn += 1
    kinds = Counter(e.get("event") for e in log)
    return {
        "files_in": len(expected), "result_files": len(results), "summary_rows": len(summary["images"]),
        "duplicates": sum(n - 1 for n in rows.values() if n > 1) + len(set(results) - set(expected)),
        "lost": len(set(expected) - set(results)) + len(set(expected) - set(rows)),
        "quarantined": len(summary["failed"]) + statuses.get("quarantined", 0),
        "wrong_counts": len(wrong), "state": statuses,
        "summary_total_agrees": summary["total"] == sum(r["total"] for r in results.values()),
        "files_counted_more_than_once": sum(1 for n in per_file.values() if n > 1),
        "counter_calls": sum(per_file.values()),
        "log": {k: kinds[k] for k in ("start", "output_blocked", "output_resumed", "summary_error", "observe_error",
                                       "rolled_back", "failed", "quarantined")},
        "quarantine_jsonl_lines": len((out_dir / "quarantine.jsonl").read_text().splitlines()),
        "torn_log_lines": torn,
    }


def to_markdown(res: dict) -> str:
    o, a = res["outcome"], res["settings"]
    verdict = "PASS" if o["lost"] == 0 and o["duplicates"] == 0 and o["quarantined"] == 0 and o["wrong_counts"] == 0 \
        and o["counted_again_by_final_restart"] == 0 else "FAIL"
    lines = [
        "# Folder service soak: burst, kill -9, full disk", "",
        f"Machine: {machine_line(res['machine'])}; load average at start {res['machine']['load_average_at_start']}.", "",
        f"{a['files']} PNGs dropped as one burst (renamed into place) into a watched folder; {a['kills']} `kill -9` "
        f"at random moments in the first {a['kill_window']:.0f} s, each followed by a restart; OUT_DIR on a "
        f"{a['disk_mb']} MB tmpfs filled to the last byte from {a['full_at']:.0f} s for {a['full_seconds']:.0f} s. "
        f"Model-free counter, {a['delay'] * 1000:.0f} ms per file, 2 workers. Seed {a['seed']}. "
        f"Wall time {o['seconds']} s. **{verdict}**", "",
        "| files in | results | summary rows | duplicates | lost | quarantined | wrong counts |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {o['files_in']} | {o['result_files']} | {o['summary_rows']} | {o['duplicates']} | {o['lost']} | "
        f"{o['quarantined']} | {o['wrong_counts']} |", "",
        f"- State database at the end: {o['state']}; summary total agrees with the result files: "
        f"{o['summary_total_agrees']}; quarantine.jsonl lines: {o['quarantine_jsonl_lines']}.",
        f"- Files counted more than once (in flight at a kill, redone; still one result each): "
        f"{o['files_counted_more_than_once']} ({o['counter_calls']} counter calls for {o['files_in']} files).",
        f"- A final `--once` restart counted {o['counted_again_by_final_restart']} files again "
        f"(exit code {o['final_once_exit_code']}); SIGTERM of the last service: exit code {o['sigterm_exit_code']}.",
        f"- Service log: {o['log']['start']} starts, {o['log']['output_blocked']} `output_blocked` and "
        f"{o['log']['output_resumed']} `output_resumed` lines (once per pause per process), "
        f"{o['log']['failed']} failed, {o['log']['observe_error']} observe errors, {o['torn_log_lines']} lines cut "
        f"short (by a kill or the full disk; the log is best effort); {o['service_stderr_tracebacks']} tracebacks "
        "on stderr.",
        "", "| t (s) | event | details |", "|---:|---|---|",
    ]
    for e in res["events"]:
        details = ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("t", "event"))
        lines.append(f"| {e['t']} | {e['event']} | {details} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--kill-window", type=float, default=120.0, help="kills land in the first this many seconds")
    parser.add_argument("--full-at", type=float, default=40.0, help="seconds after the start the disk fills")
    parser.add_argument("--full-seconds", type=float, default=60.0)
    parser.add_argument("--disk-mb", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.08, help="seconds per file in place of a model")
    parser.add_argument("--finish-timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, default=None, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--in-namespace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.in_namespace:  # a private mount namespace, so the tmpfs is ours alone
        unshare = shutil.which("unshare")
        if unshare is None or not sys.platform.startswith("linux"):
            print("watch_soak: needs Linux and unshare (util-linux) for its tmpfs OUT_DIR", file=sys.stderr)
            return 2
        user = [] if os.geteuid() == 0 else ["--map-root-user"]
        return subprocess.call([unshare, "--mount", "--propagation", "private", *user, sys.executable,
                                __file__, *sys.argv[1:], "--in-namespace"])
    machine = describe_machine(note="shared machine: other jobs may run alongside")
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "in_namespace", "work")}
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        res = {"machine": machine, "settings": settings, **soak(args, Path(tempfile.mkdtemp(dir=args.work)))}
    else:
        with tempfile.TemporaryDirectory(prefix="bcedge-soak-") as tmp:
            res = {"machine": machine, "settings": settings, **soak(args, Path(tmp))}
    stem = f"watch_soak_{machine_slug(machine)}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    (args.out / f"{stem}.md").write_text(to_markdown(res) + "\n")
    print(to_markdown(res))
    print(f"wrote {args.out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
