"""Peak memory of counting a huge smear file (default 20000 x 20000 PNG) with ``Counter.count_file``.

Each run is its own child process reporting its peak RSS (``ru_maxrss``: the whole process, Python,
numpy, ONNX Runtime and its arenas included), the RSS once the model is loaded, time and counts. Runs:

* ``model``: the real model (``--model``) end to end;
* ``null detector``: the same pipeline with a backend that returns no boxes (same input size), to
  show what reading, tiling, queues and preprocessing cost by themselves.

The decoded image would be width x height x 3 bytes (1.2 GB at 20k x 20k); a streaming run never
holds it. Goal: peak at most 2 GB (``--goal-mb``; issue 15 asks at most 1 GB of the new default). A
model with a pixel scale resamples the smear (drawn at the BCCD scale) first; the scale it chose is
recorded beside the figures.

    nice -n 10 python benchmarks/runtime_memory.py --model default
    python benchmarks/runtime_memory.py --size 4096x4096 --runs null --results /tmp/r   # a quick look
    nice -n 10 python benchmarks/runtime_memory.py --model default --batch-size 4 1 --goal-mb 1024 \
        --name runtime_memory_new_default_cpu

Results: ``benchmarks/results/runtime_memory_cpu.{json,md}``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import (RESULTS, header, log, machine, parse_size, resolve_model, run_child_json, smear,
                     write_results)

_CHILD = r"""
import json, resource, sys, time
import numpy as np
from bcedge.backends import load_backend
from bcedge.backends.base import Backend
from bcedge.runtime.counter import Counter

kind, model, image, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

class NullBackend(Backend):
    name = "null"
    def __init__(self, meta):
        self.meta, self.device, self.precision, self.inference_seconds, self.path = meta, "cpu", "none", [], model
    def _load(self):
        raise NotImplementedError
    def _infer(self, batch):
        n = len(batch)
        return np.zeros((n, 1, 4), np.float32), np.zeros((n, 1, self.meta.num_classes), np.float32)

backend = load_backend(model)
if kind == "null":
    backend = NullBackend(backend.meta)
counter = Counter(backend, batch_size=batch)
counter.warmup()
rss_loaded = rss()
started = time.perf_counter()
result = counter.count_file(image)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": round(seconds, 1), "peak_rss_mb": round(rss(), 1),
                  "rss_after_load_mb": round(rss_loaded, 1),
                  "tiles": result.tiles, "counts": result.counts, "merge_s": round(result.timings["merge_s"], 3),
                  "tile": list(result.tile), "overlap": counter.overlap,
                  "scale": result.scale.to_dict() if result.scale else None}))
"""


def run_child(kind: str, model: Path, image: Path, batch: int) -> dict:
    return run_child_json(_CHILD, [kind, str(model), str(image), str(batch)], f"{kind} run on {image.name}")


def markdown(report: dict) -> str:
    s = report["setup"]
    lines = header(f"Runtime memory: counting a {s['size']} smear file", report["machine"],
                   f"Synthetic smear {s['size']} PNG ({s['image_mb']} MB on disk; decoded whole it would be "
                   f"{s['decoded_mb']} MB), model `{s['model']}`. Peak RSS of a child "
                   "process per run (everything: Python, numpy, OpenCV, ONNX Runtime).")
    lines += ["| run | tiles | tile | overlap | scale | time s | peak RSS MB | RSS after model load MB | counts |",
              "|---|---:|---|---:|---|---:|---:|---:|---|"]
    for name, r in report["runs"].items():
        counts = ", ".join(f"{k} {v}" for k, v in r["counts"].items())
        scale = r.get("scale") or {}
        scale = f"{scale['factor']} ({scale['method']}, {scale['passes']} pass)" if scale else "1 (none)"
        lines.append(f"| {name} | {r['tiles']} | {r['tile'][0]}x{r['tile'][1]} | {r['overlap']} | {scale} | {r['seconds']} | "
                     f"{r['peak_rss_mb']} | {r['rss_after_load_mb']} | {counts} |")
    goal = s.get("goal_mb", 2048)
    lines += ["", f"Goal: peak at most {goal} MB.", ""] + report.get("conclusions", [])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default",
                        help="default, an .onnx, or a .pt checkpoint (exported at --tile)")
    parser.add_argument("--tile", type=int, default=768)
    parser.add_argument("--like", default=None, help="export a .pt with this ONNX model's operating point")
    parser.add_argument("--size", default="20000x20000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[4], help="one model run per batch size")
    parser.add_argument("--runs", nargs="+", default=["null", "model"], choices=["null", "model"])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", default="runtime_memory_cpu")
    parser.add_argument("--goal-mb", type=int, default=2048, help="peak RSS goal (issue 15: 1024 for the new default)")
    parser.add_argument("--note", default="nice -n 10")
    args = parser.parse_args(argv)
    width, height = parse_size(args.size)
    model = resolve_model(args.model, args.tile, like=args.like)
    image = smear(width, height, seed=args.seed)
    report = {"machine": machine(args.note), "runs": {}, "setup": {
        "size": f"{width}x{height}", "model": str(model), "goal_mb": args.goal_mb,
        "image_mb": round(image.stat().st_size / 2**20, 1), "decoded_mb": round(width * height * 3 / 2**20, 1)}}
    jobs = [(f"null detector (pipeline only), batch {b}", "null", b)
            for b in args.batch_size[:1] if "null" in args.runs]
    jobs += [(f"model, batch {b}", "model", b) for b in args.batch_size if "model" in args.runs]
    for name, kind, batch in jobs:
        log(f"{name} on {image.name} ...")
        report["runs"][name] = run_child(kind, model, image, batch)
        log(f"  {report['runs'][name]}")
    write_results(args.name, report, markdown(report), args.results)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
