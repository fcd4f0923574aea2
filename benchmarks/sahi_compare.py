"""bcedge against SAHI's ``get_sliced_prediction``: same process, image, weights, tile size and overlap.

Both count a synthetic smear held in memory (the same RGB array), and both are scored against its exact
ground truth (P/R/F1 at IoU 0.5, duplicates: see ``_matching.match``). Runs:

* ``bcedge (onnxruntime)``: ``Counter`` with the ONNX export of the checkpoint (what bcedge deploys);
* ``bcedge (onnxruntime, INT8)``, with ``--int8 FILE``: the same export quantized for the CPU
  (``bcedge quantize --target cpu``), which is how bcedge deploys on a CPU; SAHI has no INT8 path for
  torchvision models, so this row shows the product against SAHI, the FP32 rows show the pipeline;
* ``bcedge (torch)``: ``Counter`` with the torch backend on the same checkpoint, so the engine is the
  same as SAHI's and the difference left is the pipeline (overlap of stages, decode, merge); batch 1
  by default, like SAHI (torch on a 2-core CPU runs a batch of 4 slower per tile than 4 batches of 1);
* ``SAHI``: ``TorchVisionDetectionModel`` wrapping the same torchvision FCOS, merging with SAHI's
  defaults (GREEDYNMM, IOS 0.5, class-aware) and with NMS at IoU 0.5 (class-aware, the closer match
  to bcedge's per-tile NMS); ``perform_standard_pred=False`` (a whole-image pass
  cannot run on a fixed-input model, and would only add time), confidence = bcedge's lowest class
  threshold (per-class thresholds applied after SAHI's merge when they differ).

Adaptations to SAHI, all in this script: the torchvision model gets ``FixedSizeTransform`` at the tile
size (its built-in transform would rescale every slice to the training size, 480 px short side, and
shrink the cells; SAHI's slices are all tile-sized, since SAHI shifts border slices back inside the
image as bcedge does), and its per-tile postprocess is set like bcedge's
decode (score threshold, 3000 candidates before NMS instead of the build's 1000 per pyramid level,
which drops cells on crowded tiles). SAHI's overlap ratio is set so that ``int(ratio * tile)`` equals
bcedge's overlap in pixels.

    nice -n 10 python benchmarks/sahi_compare.py --checkpoint runs/fcos_lite0/best.pt           # exports at 768
    nice -n 10 python benchmarks/sahi_compare.py --checkpoint best.pt --model default          # bundled ONNX
    bcedge quantize bcedge/assets/models/default.onnx --target cpu --calib calibration/bccd_640x640 --out d.int8.onnx
    nice -n 10 python benchmarks/sahi_compare.py --checkpoint best.pt --model default --int8 d.int8.onnx

Results: ``benchmarks/results/sahi_compare_cpu.{json,md}``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from _common import RESULTS, header, log, machine, parse_size, write_results
from _matching import cut_cells, match
from _models import benchmark_model
from _smears import load_truth, smear

from bcedge.detections import Detections
from bcedge.imageio import read_image
from bcedge.runtime.counter import Counter


def torch_backend(checkpoint: Path, like):
    """bcedge's torch backend on the checkpoint, with the tile size and operating point (score thresholds,
    NMS IoU, largest object) of the ONNX model's metadata ``like`` (the FCOS graph is fully convolutional)."""
    from bcedge.backends.torch import TorchBackend
    from bcedge.models.detector import FixedSizeTransform

    backend = TorchBackend(checkpoint, device="cpu")
    tile = tuple(like.input_size)
    for name in ("input_size", "score_thresholds", "default_score_threshold", "nms_iou", "max_object_size"):
        setattr(backend.meta, name, getattr(like, name))
    # The same model object serves SAHI through torchvision's forward, whose built-in transform would
    # rescale every slice to the training size (480 px short side): give it the no-resize transform.
    backend.detector.model.transform = FixedSizeTransform(tuple(tile), backend.meta.mean, backend.meta.std)
    return backend


def sahi_model(backend, thresholds: np.ndarray):
    from sahi.models.torchvision import TorchVisionDetectionModel

    from bcedge.runtime.decode import PRE_NMS_TOPK

    # the torchvision model's own per-tile postprocess, set as bcedge's decode does it (score threshold,
    # candidates before NMS); its build default of 1000 candidates per level drops cells on crowded tiles
    backend.detector.model.score_thresh = float(thresholds.min())
    backend.detector.model.topk_candidates = PRE_NMS_TOPK
    names = list(backend.meta.class_names)
    mapping = {"0": "__background__", **{str(k + 1): n for k, n in enumerate(names)}}
    return TorchVisionDetectionModel(model=backend.detector.model, device="cpu", category_mapping=mapping,
                                     confidence_threshold=float(thresholds.min()), load_at_init=True)


def sahi_count(model, image: np.ndarray, tile: tuple[int, int], overlap: int, thresholds: np.ndarray,
               postprocess: str = "GREEDYNMM", metric: str = "IOS") -> tuple[Detections, dict]:
    from sahi.predict import get_sliced_prediction

    ratio_w, ratio_h = (overlap + 0.5) / tile[0], (overlap + 0.5) / tile[1]
    started = time.perf_counter()
    result = get_sliced_prediction(image, model, slice_height=tile[1], slice_width=tile[0],
                                   overlap_height_ratio=ratio_h, overlap_width_ratio=ratio_w,
                                   perform_standard_pred=False, postprocess_type=postprocess,
                                   postprocess_match_metric=metric, postprocess_match_threshold=0.5, verbose=0)
    seconds = time.perf_counter() - started
    preds = [p for p in result.object_prediction_list if p.category.id > 0]
    xyxy = np.array([p.bbox.to_xyxy() for p in preds], np.float32).reshape(-1, 4)
    dets = Detections(xyxy, np.array([p.score.value for p in preds], np.float32),
                      np.array([p.category.id - 1 for p in preds], np.int64))
    dets = dets[dets.scores >= thresholds[dets.class_ids]] if len(dets) else dets
    return dets, {"seconds": seconds, "merge_s": result.durations_in_seconds.get("postprocess", 0.0)}


def sahi_slices(width: int, height: int, tile: tuple[int, int], overlap: int) -> np.ndarray:
    from sahi.slicing import get_slice_bboxes

    ratio_w, ratio_h = (overlap + 0.5) / tile[0], (overlap + 0.5) / tile[1]
    return np.array(get_slice_bboxes(height, width, tile[1], tile[0], False, ratio_h, ratio_w), np.int64)


def parity(onnx_counter: Counter, torch_counter: Counter, image: np.ndarray) -> float:
    """Max |score| difference between the two engines on the first tile: they must run the same weights."""
    from bcedge.backends import preprocess

    w, h = onnx_counter.tile
    batch = preprocess(np.ascontiguousarray(image[None, :h, :w]))
    _, a = onnx_counter.backend.infer(batch)
    _, b = torch_counter.backend.infer(batch)
    return float(np.abs(a - b).max())


def markdown(report: dict) -> str:
    s = report["setup"]
    lines = header("bcedge vs SAHI get_sliced_prediction", report["machine"],
                   f"Synthetic smear {s['size']} (seed {s['seed']}), {s['truth_total']} cells {s['truth']}; tile "
                   f"{s['tile'][0]}x{s['tile'][1]}, overlap {s['overlap']} px, score threshold {s['thresholds']}; "
                   f"weights `{s['checkpoint']}` (ONNX `{s['onnx']}`{', INT8 `' + s['int8'] + '`' if s.get('int8') else ''}, max score difference ONNX Runtime vs torch on "
                   f"one tile {s['parity_max_score_diff']:.2e}). SAHI {s['sahi_version']}, merges "
                   f"{s['sahi_postprocess']} at "
                   f"0.5, `perform_standard_pred=False`. Times: min (median) of {s['repeats']} runs after a "
                   "warm-up, whole image from an in-memory RGB array to merged detections.")
    lines += ["| run | tiles | time s | tiles/s | Mpx/s | merge s | counts (RBC / WBC / Platelets) | P | R | F1 "
              "| multi | fragments cut / uncut |", "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|"]
    for r in report["runs"]:
        c = " / ".join(str(v) for v in r["counts"].values())
        lines.append(f"| {r['run']} | {r['tiles']} | {r['seconds']} ({r['median_s']}) | {r['tiles_per_s']} | "
                     f"{r['mpx_per_s']} | {r['merge_s']} | {c} | {r['precision']} | {r['recall']} | {r['f1']} | "
                     f"{r['multi_matched']} | {r['fragments_cut']} / {r['fragments_uncut']} |")
    lines += ["", "Throughput ratios (SAHI time / bcedge time, min over runs): "
              + ", ".join(f"{k}: **{v}x**" for k, v in report["ratios"].items()) + ". Goal: at least 3x.", ""]
    lines += report.get("conclusions", [])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="the .pt the ONNX model was exported from")
    parser.add_argument("--model", default=None, help="bcedge's ONNX model (default: export --checkpoint at --tile)")
    parser.add_argument("--tile", type=int, default=768, help="tile size when exporting --checkpoint")
    parser.add_argument("--int8", type=Path, default=None,
                        help="INT8 ONNX of the same model (bcedge quantize --target cpu): adds a bcedge INT8 run")
    parser.add_argument("--size", default="4096x3072")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--torch-batch-size", type=int, default=1,
                        help="batch of bcedge's torch run (torch on a small CPU is fastest at 1)")
    parser.add_argument("--sahi-postprocess", nargs="+", default=["GREEDYNMM/IOS", "NMS/IOU"],
                        help="SAHI merges to run, TYPE/METRIC (threshold 0.5)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", default="sahi_compare_cpu")
    args = parser.parse_args(argv)
    import sahi

    model_path = benchmark_model(args.model or str(args.checkpoint), args.tile)
    onnx_counter = Counter.load(model_path)
    tile, overlap = onnx_counter.tile, onnx_counter.overlap
    torch_counter = Counter(torch_backend(args.checkpoint, onnx_counter.meta), overlap=overlap,
                            batch_size=args.torch_batch_size)
    thresholds = onnx_counter.thresholds
    bcedge_runs = {"bcedge (onnxruntime)": onnx_counter, "bcedge (torch)": torch_counter}
    if args.int8:
        int8_counter = Counter.load(args.int8, overlap=overlap)
        if tuple(int8_counter.tile) != tuple(tile):
            raise SystemExit(f"{args.int8}: tile {int8_counter.tile} differs from the FP32 model's {tile}")
        bcedge_runs["bcedge (onnxruntime, INT8)"] = int8_counter
    detector = sahi_model(torch_counter.backend, thresholds)

    image_path = smear(*parse_size(args.size), seed=args.seed)
    image = read_image(image_path)
    height, width = image.shape[:2]
    truth = load_truth(image_path, list(onnx_counter.meta.class_names))
    grid = onnx_counter.plan(width, height)
    slices = sahi_slices(width, height, tile, overlap)
    cuts = {"bcedge": cut_cells(truth, grid), "sahi": cut_cells(truth, slices, width, height)}

    log("warm-up")
    warm = np.ascontiguousarray(image[:tile[1], :tile[0]])
    for counter in bcedge_runs.values():
        counter.count(warm)
    sahi_count(detector, warm, tile, overlap, thresholds)

    variants = {f"SAHI (torch, {v})": v.split("/") for v in args.sahi_postprocess}
    runs = {**{name: [] for name in bcedge_runs}, **{name: [] for name in variants}}
    outputs = {}
    for repeat in range(args.repeats):
        for name in runs:
            log(f"{name}, run {repeat + 1}")
            if name.startswith("SAHI"):
                dets, t = sahi_count(detector, image, tile, overlap, thresholds, *variants[name])
            else:
                result = bcedge_runs[name].count(image, source=image_path.name)
                dets = result.detections
                t = {"seconds": result.timings["total_s"], "merge_s": result.timings["merge_s"]}
            runs[name].append(t)
            outputs[name] = dets
            log(f"  {t['seconds']:.1f} s, {len(dets)} detections")
    rows = []
    for name, times in runs.items():
        best = min(t["seconds"] for t in times)
        n_tiles = len(slices) if name.startswith("SAHI") else len(grid)
        scores = match(outputs[name], truth, cuts["sahi" if name.startswith("SAHI") else "bcedge"])
        rows.append({"run": name, "tiles": n_tiles, "seconds": round(best, 2),
                     "median_s": round(statistics.median(t["seconds"] for t in times), 2),
                     "tiles_per_s": round(n_tiles / best, 2), "mpx_per_s": round(width * height / 1e6 / best, 3),
                     "merge_s": round(min(t["merge_s"] for t in times), 4),
                     "counts": outputs[name].counts(list(truth.class_names)), **scores["all"],
                     "per_class": scores["per_class"], "all_seconds": [round(t["seconds"], 3) for t in times]})
    by = {r["run"]: r["seconds"] for r in rows}
    ratios = {f"{sahi} / {ours}": round(by[sahi] / by[ours], 2)
              for sahi in variants for ours in bcedge_runs}
    report = {"machine": machine("nice -n 10"), "runs": rows, "ratios": ratios, "setup": {
        "size": f"{width}x{height}", "seed": args.seed, "truth": truth.counts, "truth_total": len(truth),
        "tile": list(tile), "overlap": overlap, "thresholds": dict(zip(truth.class_names, thresholds.tolist())),
        "checkpoint": str(args.checkpoint), "onnx": str(model_path), "int8": str(args.int8 or ""),
        "repeats": args.repeats,
        "sahi_version": sahi.__version__, "sahi_postprocess": args.sahi_postprocess,
        "parity_max_score_diff": parity(onnx_counter, torch_counter, image)}}
    write_results(args.name, report, markdown(report), args.results)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
