"""Seams: on synthetic smears with exact ground truth, no cell is counted twice where tiles meet, and the
count does not change when the tile grid moves (other tile sizes, overlaps, grid offsets).

Two detectors, reported apart:

* the ground-truth **oracle** (``bcedge.testing.oracle.OracleBackend``): a perfect detector that also reports the
  partial boxes of cells cut by a tile border, so any seam error shows as a wrong count. Counts must
  equal the truth exactly, for every grid; the ``nms`` merge is run as a control that does double count.
* the **real model** (``--model``): the detector's own errors stay, so counts are compared between
  grids (a cell near the score threshold may flip when it is seen in another tile), and duplicates
  are looked for directly: counted cells carrying a second detection (a second match, or a partial
  box inside), split by where those detections came from (``bcedge.testing.recorder.TileRecorder``): different
  tiles is a seam error, one tile is the detector's own double box.

    nice -n 10 python benchmarks/seams.py --model default
    nice -n 10 python benchmarks/seams.py --model default --checkpoint runs/fcos_lite0/best.pt --model-tiles 768 1024
    python benchmarks/seams.py --sizes 1536x1024 --real-sizes 1536x1024 --results /tmp/r   # a quick look

Results: ``benchmarks/results/seams_cpu.{json,md}``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import RESULTS, header, log, machine, parse_size, write_results
from _matching import cut_cells, match
from _models import benchmark_model
from _smears import load_truth, smear

from bcedge.runtime.counter import Counter
from bcedge.testing.oracle import OracleBackend
from bcedge.testing.recorder import TileRecorder

OFFSETS = [(0, 0), (131, 257), (389, 71)]


def run_once(counter: Counter, image: Path, truth, label: str) -> dict:
    """Count one image with one grid; match to the truth."""
    oracle = counter.backend if isinstance(counter.backend, OracleBackend) else None
    from bcedge.runtime.sources import open_image

    with open_image(image) as src:
        grid = counter.plan(src.width, src.height)
    if oracle is not None:
        oracle.expect(grid)
    recorder = TileRecorder(counter)
    started = time.perf_counter()
    result = counter.count_file(image)
    seconds = time.perf_counter() - started
    recorder.close()
    if oracle is not None:
        oracle.finish()
    det_tiles = recorder.sources(result.detections, grid)
    if (det_tiles < 0).any():
        raise RuntimeError(f"{label}: {(det_tiles < 0).sum()} merged detections not found among the tiles' own")
    scores = match(result.detections, truth, cut_cells(truth, grid), det_tiles)
    row = {"grid": label, "tile": list(counter.tile), "overlap": counter.overlap, "offset": list(counter.grid_offset),
           "merge": counter.merge, "tiles": result.tiles, "seconds": round(seconds, 2), "counts": result.counts,
           "truth": truth.counts, **{k: v for k, v in scores["all"].items()}, "per_class": scores["per_class"]}
    log(f"  {label}: {result.counts} (truth {truth.counts}), multi {row['multi_matched']}, fragments "
        f"{row['fragments']}, duplicated cells seam/same tile {row['seam_duplicates']}/{row['same_tile_duplicates']}, "
        f"{seconds:.1f} s")
    row["_matched"] = scores["matched"]
    return row


def invariance(rows: list[dict], class_names: list[str]) -> dict:
    """How much counts and per-cell outcomes move between the grids of one detector (merge ``core``)."""
    rows = [r for r in rows if r["merge"] == "core"]
    counts = {n: [r["counts"][n] for r in rows] for n in class_names}
    totals = [sum(r["counts"].values()) for r in rows]
    base = rows[0]["_matched"]
    flips = [int((r["_matched"] != base).sum()) for r in rows[1:]]
    return {"grids": len(rows), "count_range": {n: max(v) - min(v) for n, v in counts.items()},
            "total_range": max(totals) - min(totals), "total_min": min(totals), "total_max": max(totals),
            "cells_flipped_vs_first_grid": flips, "truth_total": sum(rows[0]["truth"].values())}


def oracle_runs(image: Path, tiles: list[int], offsets: list[tuple[int, int]]) -> tuple[list[dict], dict]:
    truth = load_truth(image)
    class_names = truth.class_names
    rows = []
    for tile in tiles:
        for offset in offsets:
            counter = Counter(OracleBackend(truth, (tile, tile)), grid_offset=offset)
            rows.append(run_once(counter, image, truth, f"oracle tile {tile} offset {offset}"))
    control = Counter(OracleBackend(truth, (tiles[0], tiles[0])), merge="nms")
    rows.append(run_once(control, image, truth, f"oracle tile {tiles[0]} merge nms (control)"))
    return rows, invariance(rows, class_names)


def model_runs(image: Path, model: Path, offsets: list[tuple[int, int]], extra_overlap: int,
               control: bool) -> tuple[list[dict], dict]:
    base = Counter.load(model)
    meta = base.meta
    # Seams are judged in the image's own pixels: a model with a pixel scale counts unresampled here (its
    # cell size given as its own), on tiles of its default input size, so tiles and detections share coordinates.
    fixed = {"tile": tuple(meta.input_size), "cell_size": (meta.pixel_scale or {}).get("cell_px") or "auto"}
    base = Counter(base.backend, **fixed)
    truth = load_truth(image, list(meta.class_names))
    base.warmup()
    rows = []
    grids = [(base.overlap, offset) for offset in offsets]
    if extra_overlap:
        grids.append((base.overlap + extra_overlap, offsets[0]))
    for overlap, offset in grids:
        counter = Counter(base.backend, overlap=overlap, grid_offset=offset, **fixed)
        rows.append(run_once(counter, image, truth, f"tile {counter.tile[0]} overlap {overlap} offset {offset}"))
    if control:
        nms = Counter(base.backend, merge="nms", **fixed)
        rows.append(run_once(nms, image, truth, f"tile {nms.tile[0]} merge nms (control)"))
    return rows, invariance(rows, list(base.meta.class_names))


def markdown(report: dict) -> str:
    lines = header("Seams: duplicates and grid invariance on synthetic smears", report["machine"],
                   "Synthetic smears (`bcedge.data.synth`, default style, seed "
                   f"{report['seed']}) with exact ground truth. P/R/F1 at IoU 0.5. *multi*: ground-truth cells "
                   "matched by two or more detections (IoU >= 0.5). *fragments*: unmatched detections lying >= 80% "
                   "inside a counted cell (a partial box of a cell already counted). *duplicated seam / same tile*: "
                   "counted cells carrying two or more such detections, which came from different tiles (a seam "
                   "error) / all from one tile (the detector's own double box, no tiling involved); the tile of each "
                   "merged detection is recorded during the count. Merge `core` is the runtime's default; `nms` "
                   "is a control that keeps cut cells' partial boxes.")
    for section in report["sections"]:
        lines += [f"## {section['title']}", "", section.get("note", ""), "",
                  "| grid | overlap | tiles | counts (RBC / WBC / Platelets) | truth | P | R | F1 | multi | fragments "
                  "| duplicated seam / same tile | s |", "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---|---:|"]
        for r in section["rows"]:
            c = " / ".join(str(v) for v in r["counts"].values())
            t = " / ".join(str(v) for v in r["truth"].values())
            lines.append(f"| {r['grid']} | {r['overlap']} | {r['tiles']} | {c} | {t} | {r['precision']} | "
                         f"{r['recall']} "
                         f"| {r['f1']} | {r['multi_matched']} | {r['fragments']} | {r['seam_duplicates']} / "
                         f"{r['same_tile_duplicates']} | {r['seconds']} |")
        inv = section["invariance"]
        lines += ["", f"Grid invariance over {inv['grids']} `core` grids: total count {inv['total_min']}..."
                      f"{inv['total_max']} (range {inv['total_range']}; truth {inv['truth_total']}); per-class range "
                      f"{inv['count_range']}; ground-truth cells whose matched/unmatched outcome differs from the "
                      f"first grid: {inv['cells_flipped_vs_first_grid']}.", ""]
    lines += report.get("conclusions", [])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="default or an .onnx model")
    parser.add_argument("--checkpoint", default=None,
                        help="the .pt behind --model: also run it exported at each --model-tiles, with --model's "
                             "operating point (thresholds, NMS IoU, overlap)")
    parser.add_argument("--model-tiles", type=int, nargs="*", default=[])
    parser.add_argument("--only-exports", action="store_true", help="run only the --checkpoint exports")
    parser.add_argument("--tiles", type=int, nargs="+", default=[768, 1024], help="tile sizes of the oracle grids")
    parser.add_argument("--sizes", nargs="*", default=["4096x3072", "16384x16384"], help="oracle smears")
    parser.add_argument("--real-sizes", nargs="*", default=["4096x3072"], help="smears for the real model")
    parser.add_argument("--extra-overlap", type=int, default=64, help="also run the model with overlap + this (0: no)")
    parser.add_argument("--grids", type=int, default=len(OFFSETS), help="grid offsets to run the model with (1-3)")
    parser.add_argument("--no-control", action="store_true", help="skip the model's nms-merge control run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", default="seams_cpu")
    args = parser.parse_args(argv)
    report = {"seed": args.seed, "machine": machine("nice -n 10; model training may share the CPU"), "sections": []}
    for size in args.sizes:
        image = smear(*parse_size(size), seed=args.seed)
        log(f"oracle on {image.name}")
        rows, inv = oracle_runs(image, args.tiles, OFFSETS)
        report["sections"].append({"title": f"Oracle detector, {size}", "rows": rows, "invariance": inv,
                                   "note": "Perfect detector that also reports partial boxes of cut cells "
                                           "(>= 10% visible). Every `core` row must equal the truth exactly."})
    for size in args.real_sizes:
        image = smear(*parse_size(size), seed=args.seed)
        models = [] if args.only_exports else [(benchmark_model(args.model), f"`{args.model}`")]
        models += [(benchmark_model(args.checkpoint, tile, like=args.model),
                    f"`{args.checkpoint}` exported at {tile}x{tile} with the operating point of `{args.model}`")
                   for tile in args.model_tiles]
        for model, what in models:
            log(f"model {model.name} on {image.name}")
            rows, inv = model_runs(image, model, OFFSETS[:args.grids], args.extra_overlap, not args.no_control)
            report["sections"].append({"title": f"Model {model.name}, {size}", "rows": rows, "invariance": inv,
                                       "note": f"Model {what}, ONNX Runtime (CPU)."})
    for section in report["sections"]:
        for row in section["rows"]:
            row.pop("_matched", None)
    write_results(args.name, report, markdown(report), args.results)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
