"""Folder-service throughput: images per second through ``bcedge watch --once`` vs the bare counter.

N copies of the bundled BCCD sample smears (640x480 JPEG, each re-encoded so every file has its own
content) are counted three ways on the CPU:

* ``count_file``: a plain loop over ``Counter.count_file`` (the ceiling);
* ``watch --once`` with 1 and 2 workers: discovery, settle check, sha256, SQLite state, atomic
  result JSON (fsync) and the summary, end to end.

Images per second are measured from the first to the last finished image (the one-off settle wait
and model loading are not throughput) and also given as wall time for the whole batch. One warm-up
image runs first. ``--model stub`` uses the test suite's model-free counter instead, to show the
service's own ceiling. Run with ``nice -n 10 python benchmarks/watch_throughput.py``.
Writes ``benchmarks/results/watch_throughput_cpu.{json,md}`` (``_stub`` for the stub counter).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bcedge.bench.machine import describe_machine  # noqa: E402
from bcedge.watch import ExitCode, WatchConfig, WatchService  # noqa: E402

SAMPLES = ROOT / "bcedge" / "assets" / "sample_bccd" / "JPEGImages"


def machine() -> dict:
    return describe_machine(note="shared machine: another job (model training) may run alongside")


def make_inputs(folder: Path, n: int) -> list[Path]:
    """``n`` JPEGs cycling through the samples; a one-pixel tweak gives each file its own content."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [cv2.imread(str(p)) for p in sorted(SAMPLES.glob("*.jpg"))]
    paths = []
    for i in range(n):
        image = sources[i % len(sources)].copy()
        image[0, 0] = (i % 256, (i // 256) % 256, 0)
        path = folder / f"smear_{i:05d}.jpg"
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(path)
    return paths


def load_counter(model: str, device: str):
    if model == "stub":
        from bcedge.testing.squares import StubCounter

        return StubCounter()
    from bcedge.runtime.counter import Counter

    return Counter.load(model, device=device)


def bare_loop(counter, paths: list[Path]) -> dict:
    counter.count_file(paths[0])  # warm-up
    started = time.perf_counter()
    total = sum(len(counter.count_file(p).detections) for p in paths)
    seconds = time.perf_counter() - started
    return {"images": len(paths), "seconds": round(seconds, 3), "images_per_s": round(len(paths) / seconds, 2),
            "cells": total}


def watch_once(counter, in_dir: Path, out_dir: Path, workers: int) -> dict:
    shutil.rmtree(out_dir, ignore_errors=True)
    config = WatchConfig(in_dir, out_dir, once=True, workers=workers, settle=0.5, model_name="benchmark")
    service = WatchService(counter, config, show_status=False)
    started = time.perf_counter()
    code = service.run()
    seconds = time.perf_counter() - started
    if code != ExitCode.OK:
        raise SystemExit(f"watch ended with {code!r}; see {out_dir / 'watch.log'}")
    summary = json.loads((out_dir / "summary.json").read_text())
    return {"workers": workers, "images": service.tally.done, "wall_seconds": round(seconds, 3),
            "images_per_s": round(service.tally.rate(), 2),
            "wall_images_per_s": round(service.tally.done / seconds, 2), "cells": summary["total"]}


def to_markdown(res: dict) -> str:
    m = res["machine"]
    lines = [
        "# Folder service throughput (`bcedge watch --once`)", "",
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, {m['platform']}, Python {m['python']}; "
        f"load average at start {m['load_average_at_start']} ({m['note']}).", "",
        f"Model: {res['model']} on {res['device']}; {res['images']} JPEG smears of 640x480 (the bundled BCCD samples, "
        "each file its own content). Rate: first to last finished image; wall: the whole batch including "
        "the 0.5 s settle wait." + (f" Note: {res['note']}" if res.get("note") else ""), "",
        "| run | images/s | wall s | wall images/s | cells counted |", "|---|---:|---:|---:|---:|",
        f"| count_file loop | {res['bare']['images_per_s']} | {res['bare']['seconds']} | "
        f"{res['bare']['images_per_s']} | {res['bare']['cells']} |",
    ]
    for run in res["watch"]:
        lines.append(f"| watch, {run['workers']} worker(s) | {run['images_per_s']} | {run['wall_seconds']} | "
                     f"{run['wall_images_per_s']} | {run['cells']} |")
    best = max(r["images_per_s"] for r in res["watch"])
    lines += ["", f"Service overhead at the best worker count: {100 * (1 - best / res['bare']['images_per_s']):+.1f}% "
              "of the bare counter's rate (negative: workers overlap reading with inference)."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="'default', an artifact path, or 'stub'")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--note", default="", help="what the model is, recorded with the results")
    args = parser.parse_args()
    counter = load_counter(args.model, args.device)
    with tempfile.TemporaryDirectory(prefix="bcedge-watch-bench-") as tmp:
        paths = make_inputs(Path(tmp) / "in", args.images)
        res = {"machine": machine(), "model": args.model, "note": args.note, "device": args.device, "images": args.images,
               "model_meta": {"arch": getattr(counter.meta, "arch", None),
                              "input_size": list(getattr(counter.meta, "input_size", []))},
               "bare": bare_loop(counter, paths),
               "watch": [watch_once(counter, Path(tmp) / "in", Path(tmp) / f"out{w}", w) for w in args.workers]}
    stem = "watch_throughput_stub" if args.model == "stub" else f"watch_throughput_{args.device}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(to_markdown(res) + "\n")
    print(to_markdown(res))
    print(f"wrote {args.out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
