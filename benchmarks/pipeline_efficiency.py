"""Does the pipeline keep the inference device busy? End-to-end throughput against bare inference
throughput on the same tiles, same model, same batch size (goal: end to end at least 90% of bare).

* **bare**: every tile of the grid cut and preprocessed beforehand, then only ``backend.infer`` timed,
  batch after batch: the most the device can do on these tiles.
* **end to end from file**: ``Counter.count_file`` (read by strips, cut tiles, preprocess, infer,
  decode, merge; stages in threads joined by bounded queues).
* **end to end from memory**: ``Counter.count`` on the decoded RGB array (no file reading).

Each stage is also timed alone, single-threaded, to show what the pipeline has to hide behind inference.
On a CPU-only machine the stages share the cores with inference, so they cannot be fully hidden; on a
GPU they run beside it.

    nice -n 10 python benchmarks/pipeline_efficiency.py --model default
    nice -n 10 python benchmarks/pipeline_efficiency.py --model runs/fcos_lite0/best.pt --tile 768

Results: ``benchmarks/results/pipeline_efficiency_cpu.{json,md}``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from _common import RESULTS, header, log, machine, parse_size, write_results
from _models import benchmark_model
from _smears import smear

from bcedge.backends import preprocess
from bcedge.runtime.counter import Counter
from bcedge.runtime.decode import decode
from bcedge.runtime.merge import merge_tiles
from bcedge.runtime.sources import iter_tiles, open_image


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def stage_costs(counter: Counter, image: Path) -> dict:
    """Each stage alone, single-threaded, over the whole grid (seconds)."""
    with open_image(image) as src:
        grid = counter.plan(src.width, src.height)
        started = time.perf_counter()
        tiles = [(t, np.ascontiguousarray(p)) for t, p in iter_tiles(src, grid)]
        read_s = time.perf_counter() - started
    b = counter.batch_size
    started = time.perf_counter()
    batches = [preprocess(np.stack([p for _, p in tiles[i:i + b]])) for i in range(0, len(tiles), b)]
    preprocess_s = time.perf_counter() - started
    started = time.perf_counter()
    raw = [counter.backend.infer(batch) for batch in batches]
    infer_s = time.perf_counter() - started
    started = time.perf_counter()
    per_tile, k = [], 0
    for boxes, scores in raw:
        for bx, sc in zip(boxes, scores):
            per_tile.append((tiles[k][0], decode(bx, sc, counter.thresholds, counter.meta.nms_iou,
                                                 counter.meta.max_detections, counter.nms_backend)))
            k += 1
    decode_s = time.perf_counter() - started
    started = time.perf_counter()
    merge_tiles(per_tile, counter.merge_params)
    merge_s = time.perf_counter() - started
    return {"read_and_cut_s": read_s, "preprocess_s": preprocess_s, "infer_s": infer_s, "decode_s": decode_s,
            "merge_s": merge_s, "tiles": len(tiles), "_batches": batches}


def markdown(report: dict) -> str:
    s = report["setup"]
    lines = header("Pipeline efficiency: end to end vs bare inference", report["machine"],
                   f"Model `{s['model']}` ({s['backend']}), tile {s['tile'][0]}x{s['tile'][1]}, overlap "
                   f"{s['overlap']} px, batch {s['batch_size']}; synthetic smear {s['size']} ({s['tiles']} tiles, "
                   f"PNG). Times: min (median) of {s['repeats']} runs after a warm-up.")
    lines += ["| run | time s | tiles/s | share of bare throughput |", "|---|---:|---:|---:|"]
    for r in report["runs"]:
        lines.append(f"| {r['run']} | {r['seconds']} ({r['median_s']}) | {r['tiles_per_s']} | {r['efficiency']:.1%} |")
    c = report["stage_costs"]
    lines += ["", "Each stage alone, single-threaded, whole grid (s): "
              + ", ".join(f"{k[:-2].replace('_', ' ')} {v:.2f}" for k, v in c.items() if k.endswith("_s")) + ".",
              "", "Goal: end to end at least 90% of bare inference throughput.", ""]
    lines += report.get("conclusions", [])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default",
                        help="default, an .onnx, or a .pt checkpoint (exported at --tile)")
    parser.add_argument("--tile", type=int, default=768)
    parser.add_argument("--size", default="4096x3072")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", default="pipeline_efficiency_cpu")
    args = parser.parse_args(argv)

    model = benchmark_model(args.model, args.tile)
    counter = Counter.load(model, batch_size=args.batch_size)
    image_path = smear(*parse_size(args.size), seed=args.seed)
    from bcedge.imageio import read_image

    frame = read_image(image_path)
    log("warm-up and stage costs")
    counter.warmup()
    costs = stage_costs(counter, image_path)
    batches = costs.pop("_batches")
    n_tiles = costs["tiles"]

    def bare() -> None:
        for batch in batches:
            counter.backend.infer(batch)

    runs = {"bare inference": [], "end to end from file": [], "end to end from memory": []}
    for repeat in range(args.repeats):  # interleaved, so slow drifts of the machine hit all alike
        log(f"run {repeat + 1}")
        runs["bare inference"] += timed(bare, 1)
        runs["end to end from file"] += timed(lambda: counter.count_file(image_path), 1)
        runs["end to end from memory"] += timed(lambda: counter.count(frame), 1)
    bare_best = min(runs["bare inference"])
    rows = [{"run": name, "seconds": round(min(t), 3), "median_s": round(statistics.median(t), 3),
             "tiles_per_s": round(n_tiles / min(t), 3), "efficiency": bare_best / min(t),
             "all_seconds": [round(x, 3) for x in t]} for name, t in runs.items()]
    for row in rows:
        log(f"{row['run']}: {row['seconds']} s, {row['efficiency']:.1%}")
    report = {"machine": machine("nice -n 10"), "runs": rows,
              "stage_costs": {k: round(v, 3) if isinstance(v, float) else v for k, v in costs.items()},
              "setup": {"model": str(model), "backend": counter.backend.describe(), "tile": list(counter.tile),
                        "overlap": counter.overlap, "batch_size": args.batch_size, "size": args.size,
                        "tiles": n_tiles, "repeats": args.repeats}}
    write_results(args.name, report, markdown(report), args.results)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
