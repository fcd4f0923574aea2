"""Peer speed: bcedge's default models beside Ultralytics YOLOv8n and YOLO11n on one CPU, with the same
ONNX Runtime session options, timed interleaved, at 1 and 2 threads, batch 1.

Rows (each FP32 and INT8):

* YOLOv8n, YOLO11n: built from their YAML (3 classes like bcedge's, random weights: speed only; no
  download, ``YOLO_OFFLINE=1``), exported to ONNX at 480x640, quantized with bcedge's CPU INT8 settings
  on the same BCCD-train calibration tiles as the old default (``_peer_models.quantize_peer``). Timed:
  bare inference on a BCCD frame (no NMS: Ultralytics does that outside the graph).
* bcedge's old default (FCOS-Lite0, fixed 640x480) and new default (dynamic input, its own pixel
  scale). Timed twice: bare inference on the tile a BCCD frame becomes (old: the frame itself; new:
  the frame resampled to the model's scale, padded to a multiple of 32: 352x288), and the whole
  ``Counter.count`` of a 640x480 frame (scale estimate, resample, tiles, inference, decoding with NMS,
  merge), cycling over the sample frames in ``bcedge/assets/sample_bccd``.

Every call of one thread count runs in one rotating order per round (``bcedge.bench.interleave``);
ratios are medians of per-round ratios. GFLOPs: ``torch.utils.flop_counter`` for every model (bcedge:
the deploy graph of the checkpoint), and Ultralytics' own figure for YOLO.

    YOLO_OFFLINE=1 nice -n 10 python benchmarks/yolo_peer.py --new default --new-int8 default-int8

Results: ``benchmarks/results/speed_peer_<machine>.{json,md}``.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

from _common import CACHE, REPO, RESULTS, log, write_results
from _peer_models import (OLD_CHECKPOINT, OLD_DEFAULT, OLD_DEFAULT_INT8, bcedge_compute, build_yolo, model_file,
                          peer_calibration, quantize_peer, ultralytics_missing)

from bcedge.bench.contention import wait_for_quiet
from bcedge.bench.interleave import interleave
from bcedge.bench.machine import describe_machine, machine_line, machine_slug

SAMPLES = REPO / "bcedge" / "assets" / "sample_bccd" / "JPEGImages"
NEW_CHECKPOINT = "export/checkpoints/fcos_lite_efficientnet_lite0_default/checkpoint.pt"
FRAME_HW = (480, 640)
OPTION_FIELDS = ("graph_optimization_level", "intra_op_num_threads", "inter_op_num_threads", "execution_mode",
                 "enable_cpu_mem_arena", "enable_mem_pattern")


def ort_session(path: Path, threads: int):
    """A CPU session with the options bcedge's ONNX Runtime backend sets (all graph optimisations,
    ``intra_op_num_threads``); everything else at ONNX Runtime's defaults."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _compared(options: dict) -> dict:
    return {k: v for k, v in options.items() if k != "enable_mem_pattern"}


def options_of(session) -> dict:
    o = session.get_session_options()
    return {k: str(getattr(o, k)) for k in OPTION_FIELDS}


def tile_of(counter, frame: np.ndarray) -> tuple[np.ndarray, dict]:
    """The preprocessed tile ``counter`` makes of ``frame`` (one tile expected), and how it got there."""
    from bcedge.backends import preprocess
    from bcedge.runtime.resample import ResampledSource
    from bcedge.runtime.sources import ArraySource, iter_tiles

    result = counter.count(frame)
    source = ArraySource(frame)
    view = source if result.scale.factor == 1.0 else ResampledSource(source, result.scale.factor)
    grid = counter.plan(view.width, view.height)
    if len(grid) != 1:
        raise SystemExit(f"a {frame.shape[1]}x{frame.shape[0]} frame became {len(grid)} tiles; expected one")
    (_, pixels), = list(iter_tiles(view, grid, pad_value=counter.meta.pad_value))
    info = {"scale": result.scale.to_dict(), "resampled": f"{view.width}x{view.height}",
            "tile": f"{grid.tile_w}x{grid.tile_h}", "counts": result.counts}
    return preprocess(pixels[None]), info


def prepare(args) -> dict:
    """Model files, compute figures and, for YOLO, exports and INT8 twins."""
    models = {"bcedge old default": {"fp32": model_file(args.old), "int8": model_file(args.old_int8),
                                     "checkpoint": args.old_checkpoint},
              "bcedge new default": {"fp32": model_file(args.new), "int8": model_file(args.new_int8),
                                     "checkpoint": args.new_checkpoint}}
    missing = ultralytics_missing() if args.yolo else None
    if missing:
        log(f"YOLO rows skipped: {missing}")
    for name in ([] if missing else args.yolo):
        calib = peer_calibration(args.calib)
        info = build_yolo(name, args.nc, FRAME_HW, CACHE / "yolo", calib)
        info["int8"] = quantize_peer(info["onnx"], calib, info["onnx"].with_suffix(".int8.onnx"), limit=args.calib_limit)
        info["fp32"] = info.pop("onnx")
        info["calibration"] = f"{calib} (first {args.calib_limit} tiles)" if args.calib_limit else str(calib)
        models[name] = info
    return {"models": models, "yolo_skipped": missing}


def time_one_thread_count(models: dict, frames: list[np.ndarray], threads: int, rounds: int, pause_s: float) -> dict:
    from bcedge.backends import load_backend, preprocess
    from bcedge.runtime.counter import Counter

    frame_input = preprocess(frames[0][None])
    calls, setup, reference_options = {}, {}, None
    for name, m in models.items():
        for precision in ("fp32", "int8"):
            row = f"{name} {precision.upper()}"
            if name.startswith("bcedge"):
                counter = Counter(load_backend(m[precision], device="cpu", threads=threads), batch_size=1)
                counter.warmup()
                tile, info = tile_of(counter, frames[0])
                options = options_of(counter.backend.session)
                reference_options = reference_options or options
                cycle = itertools.cycle(frames)
                calls[f"{row} | infer"] = lambda c=counter, t=tile: c.backend.infer(t)
                calls[f"{row} | count"] = lambda c=counter, it=cycle: c.count(next(it))
                setup[row] = {"file": str(m[precision]), "session_options": options, **info}
            else:
                session = ort_session(m[precision], threads)
                feed = {session.get_inputs()[0].name: frame_input}
                calls[f"{row} | infer"] = lambda s=session, f=feed: s.run(None, f)
                setup[row] = {"file": str(m[precision]), "session_options": options_of(session),
                              "tile": f"{FRAME_HW[1]}x{FRAME_HW[0]}"}
    for row, s in setup.items():   # memory patterns aside: off for a dynamic-input model, as bcedge's backend sets
        if _compared(s["session_options"]) != _compared(reference_options):   # them (they plan for one shape)
            raise SystemExit(f"{row}: session options {s['session_options']} differ from {reference_options}")
    log(f"{threads} thread(s): {len(calls)} rows, {rounds} rounds interleaved ...")
    runs = interleave(calls, rounds=rounds, warmup=3, pause_s=pause_s,
                      progress=lambda r, n: r % 10 == 0 and log(f"  round {r}/{n}"))
    rows = {name: {"median_ms": runs.median_ms(name), **runs.summary(name)} for name in calls}
    return {"threads": threads, "rows": rows, "setup": setup, "contention": runs.contention, "wall_s": runs.wall_s,
            "ratios": ratios(runs, models)}


def ratios(runs, models: dict) -> list[dict]:
    """Speed-ups (slower time / faster time, per round) that the issue's targets are about."""
    out = []

    def add(what: str, slower: str, faster: str, target: float | None = None) -> None:
        if slower in runs.samples and faster in runs.samples:
            r = runs.speedup(slower, faster)
            out.append({"what": what, "slower": slower, "faster": faster, "target": target, **r,
                        "met": None if target is None else r["median"] >= target})

    for p in ("FP32", "INT8"):
        new, old = f"bcedge new default {p}", f"bcedge old default {p}"
        add(f"new vs old default, whole count of a 640x480 frame, {p}", f"{old} | count", f"{new} | count", 3.0)
        add(f"new vs old default, bare inference on the frame's tile, {p}", f"{old} | infer", f"{new} | infer", 3.0)
        for yolo in (n for n in models if not n.startswith("bcedge")):
            add(f"new default whole count vs {yolo} bare inference, {p}", f"{yolo} {p} | infer", f"{new} | count", 1.0)
            add(f"new default bare inference vs {yolo} bare inference, {p}", f"{yolo} {p} | infer", f"{new} | infer", 1.0)
    for name in models:
        add(f"{name}: INT8 vs FP32, bare inference", f"{name} FP32 | infer", f"{name} INT8 | infer")
    return out


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# Peer speed: bcedge defaults vs Ultralytics YOLO on {m['cpu']}", "",
             f"Machine: {machine_line(m)}; {m['platform']}, Python {m['python']}; CPU id {m.get('cpu_id')}. "
             f"Date {report['date']}. {m.get('note', '')}", "",
             "Absolute times belong to this CPU only; the ratios were measured side by side in one run "
             "(each a median of per-round ratios, 10th-90th percentile in brackets). Same ONNX Runtime session "
             f"options for every model: {report['session_options']}, except that memory patterns are off for the "
             "new default, whose graph takes any tile size (bcedge's backend turns them off for such models: they "
             "plan for one shape; same speed measured on a 1024 px tile). Batch 1.", ""]
    if report.get("yolo_skipped"):
        lines += [f"**YOLO rows missing:** {report['yolo_skipped']}", ""]
    lines += ["## Compute per 640x480 BCCD frame", "",
              "| model | input the frame becomes | GFLOPs (torch flop counter) | GFLOPs (Ultralytics) | params M |",
              "|---|---|---:|---:|---:|"]
    for name, c in report["compute"].items():
        lines.append(f"| {name} | {c['input']} | {c['gflops_torch']} | {c.get('gflops_ultralytics', '')} | {c['params_m']} |")
    for t in report["timings"]:
        lines += ["", f"## {t['threads']} thread{'s' if t['threads'] > 1 else ''} (others used "
                      f"{_pct(t['contention'])} of the CPU meanwhile; {t['rounds']} rounds, {t['wall_s']} s)", "",
                  "| model | tile | FP32 infer ms | INT8 infer ms | FP32 count ms | INT8 count ms |",
                  "|---|---|---:|---:|---:|---:|"]
        for name in report["models"]:
            tile = t["setup"].get(f"{name} FP32", {}).get("tile", "")
            cells = [_median(t, name, p, k) for k in ("infer", "count") for p in ("FP32", "INT8")]
            lines.append(f"| {name} | {tile} | " + " | ".join(map(str, cells)) + " |")
        lines += ["", "| speed-up | median | p10-p90 | target | met |", "|---|---:|---|---:|---|"]
        for r in t["ratios"]:
            target = f">= {r['target']:g}x" if r["target"] else ""
            met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
            lines.append(f"| {r['what']} | {r['median']:.2f}x | {r['p10']:.2f}-{r['p90']:.2f} | {target} | {met} |")
    scales = {row: s["scale"] for t in report["timings"][:1] for row, s in t["setup"].items() if "scale" in s}
    lines += ["", "Scale each Counter chose for the first sample frame: "
              + "; ".join(f"{row}: factor {s['factor']} ({s['method']}, {s['cells']} cells, {s['passes']} pass(es))"
                          for row, s in scales.items()) + ".", ""]
    lines += ["Notes: YOLO is timed without NMS (it runs outside its graph); bcedge's `count` includes decoding "
              "with NMS, so the count rows are the stricter comparison. YOLO has random weights and 3 classes: "
              "its speed does not depend on the weights. " + report.get("calibration_note", ""), ""]
    return "\n".join(lines)


def _median(timing: dict, name: str, precision: str, kind: str) -> float | str:
    value = timing["rows"].get(f"{name} {precision} | {kind}", {}).get("median_ms")
    return "" if value is None else round(value, 1)


def _pct(share: float | None) -> str:
    return "?" if share is None else f"{100 * share:.0f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new", default="default", help="the new default, FP32 (.onnx, 'default', or git:REV:PATH)")
    parser.add_argument("--new-int8", default="default-int8")
    parser.add_argument("--new-checkpoint", default=NEW_CHECKPOINT, help="for its FLOPs (else: arch from the ONNX)")
    parser.add_argument("--old", default=OLD_DEFAULT, help="the old default, FP32")
    parser.add_argument("--old-int8", default=OLD_DEFAULT_INT8)
    parser.add_argument("--old-checkpoint", default=OLD_CHECKPOINT)
    parser.add_argument("--yolo", nargs="*", default=["yolov8n", "yolo11n"], help="Ultralytics YAML names; none: skip")
    parser.add_argument("--nc", type=int, default=3, help="YOLO classes (bcedge has 3)")
    parser.add_argument("--calib", type=Path, default=CACHE / "calib_bccd_640x480", help="YOLO's INT8 calibration set")
    parser.add_argument("--calib-limit", type=int, default=None)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--pause-ms", type=float, default=5.0)
    parser.add_argument("--quiet-wait", type=float, default=0.0,
                        help="wait up to this many seconds for others to use at most --max-contention of the CPU")
    parser.add_argument("--max-contention", type=float, default=0.15)
    parser.add_argument("--note", default="shared 2-core machine: other agents' jobs ran alongside (see 'others used')")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", default=None, help="default: speed_peer_<machine>")
    args = parser.parse_args(argv)

    from bcedge.imageio import read_image

    frames = [read_image(p) for p in sorted(SAMPLES.glob("*.jpg"))]
    prepared = prepare(args)
    models = prepared["models"]
    desc = describe_machine(args.note, threads=" and ".join(map(str, args.threads)))
    report = {"machine": desc, "date": time.strftime("%Y-%m-%d %H:%M"), "argv": sys.argv[1:],
              "frames": [p.name for p in sorted(SAMPLES.glob("*.jpg"))], "yolo_skipped": prepared["yolo_skipped"],
              "models": {n: {k: str(v) if isinstance(v, Path) else v for k, v in m.items()} for n, m in models.items()},
              "timings": [], "compute": {}}
    for threads in args.threads:
        if args.quiet_wait:
            waited, quiet = wait_for_quiet(args.max_contention, args.quiet_wait, log)
            log(f"waited {waited} s for a quiet machine: {'quiet' if quiet else 'still busy'}")
        t = time_one_thread_count(models, frames, threads, args.rounds, args.pause_ms / 1e3)
        t["rounds"] = args.rounds
        report["timings"].append(t)
    first = report["timings"][0]
    report["session_options"] = next(iter(first["setup"].values()))["session_options"]
    for name, m in models.items():
        if name.startswith("bcedge"):
            w, h = (int(v) for v in first["setup"][f"{name} FP32"]["tile"].split("x"))
            c = bcedge_compute(m["checkpoint"], m["fp32"], (h, w))
            report["compute"][name] = {**c, "input": f"{w}x{h} tile"}
        else:
            report["compute"][name] = {k: m[k] for k in ("gflops_torch", "gflops_ultralytics", "params_m")} | {
                "input": f"{FRAME_HW[1]}x{FRAME_HW[0]} frame"}
    if any(not n.startswith("bcedge") for n in models):
        report["calibration_note"] = (f"YOLO INT8 calibrated on {models[next(n for n in models if not n.startswith('bcedge'))]['calibration']} "
                                      "(BCCD train, the old default's INT8 set).")
    name = args.name or f"speed_peer_{machine_slug(desc, with_isa=True)}"
    write_results(name, report, markdown(report), args.results)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
