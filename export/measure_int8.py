"""Measure explicit INT8 (Q/DQ, ONNX Runtime) against FP32 on a labelled split: accuracy and CPU speed.

    python export/measure_int8.py --model runs/fcos_lite0/best.pt --data /work/shared/data/bccd \\
        --calib calibration/bccd_640x480 --out /tmp/int8 --variants tensorrt:percentile,cpu:percentile

Steps, all through the library: export the checkpoint (torch2onnx), check it against torch (parity),
quantize it once per variant (quantize), evaluate every ONNX file on the split with the
runtime's decoding (evaluate_raw; mAP at a 0.001 score floor), then time FP32 and INT8 on the CPU,
interleaved, after a warm-up. A variant is TARGET:METHOD (quantize.TARGETS, quantize.METHODS). Results go to
benchmarks/results/int8_onnxruntime_cpu.{json,md} with the machine described.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bcedge.artifact import read_onnx_meta  # noqa: E402
from bcedge.backends import load_backend, preprocess  # noqa: E402
from bcedge.bench.machine import describe_machine  # noqa: E402
from bcedge.convert.calibration import CalibrationSet  # noqa: E402
from bcedge.data import load_dataset  # noqa: E402
from bcedge.evaluate import evaluate_raw, input_images, raw_outputs  # noqa: E402
from bcedge.parity import compare, tile_batches  # noqa: E402


def machine() -> dict:
    return describe_machine(note="shared 2-core machine: model training and other jobs ran alongside, so absolute times are "
                                "noisy; FP32 and INT8 runs are interleaved so their ratio is comparable")


def evaluate(path: Path, data, threads: int) -> dict:
    with load_backend(path, device="cpu", threads=threads) as runner:
        raw = raw_outputs(lambda batch: runner.infer(preprocess(batch)), data, runner.meta.input_size,
                          pad_value=runner.meta.pad_value)
        metrics = evaluate_raw(raw, data, runner.meta)
    keep = ("mAP", "mAP50", "mAP75")
    return {**{k: round(float(metrics[k]), 4) for k in keep},
            "AP50_per_class": {n: round(float(v["AP50"]), 4) for n, v in metrics["per_class"].items()},
            "count_mae": {n: v["count_mae"] for n, v in metrics["count_error"].items()}}


def time_models(paths: dict[str, Path], images: np.ndarray, batch: int, rounds: int, threads: int) -> dict:
    """Median and min seconds per image of each model, rounds interleaved across models."""
    runners = {name: load_backend(path, device="cpu", threads=threads) for name, path in paths.items()}
    x = preprocess(images[:batch])
    for runner in runners.values():
        runner.warmup(iterations=2, batch_size=batch)
    seconds = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner.infer(x)
            seconds[name].append((time.perf_counter() - start) / batch)
    return {name: {"median_ms_per_image": round(statistics.median(v) * 1e3, 1), "min_ms_per_image": round(min(v) * 1e3, 1)}
            for name, v in seconds.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="bcedge checkpoint (.pt) or its FP32 export (.onnx)")
    parser.add_argument("--data", type=Path, required=True, help="dataset with the evaluation split")
    parser.add_argument("--split", default="val")
    parser.add_argument("--calib", type=Path, required=True, help="calibration set (calibration/build_bccd.py)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the ONNX files")
    parser.add_argument("--variants", default="tensorrt:percentile,cpu:percentile", help="TARGET:METHOD, comma separated")
    parser.add_argument("--fp16", action="store_true", help="also evaluate the FP16 conversion (accuracy only)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=12, help="timed rounds per model")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "int8_onnxruntime_cpu")
    args = parser.parse_args()

    from bcedge.convert.quantize import QuantOptions, quantize
    from bcedge.convert.torch2onnx import torch2onnx

    result = {"machine": machine(), "model": str(args.model), "data": f"{args.data} ({args.split})", "variants": {}}
    args.out.mkdir(parents=True, exist_ok=True)
    fp32 = args.model if args.model.suffix == ".onnx" else args.out / "model.onnx"
    if not fp32.is_file():
        torch2onnx(args.model, fp32)
    calib = CalibrationSet.load(args.calib, verify=True)
    result["calibration"] = {"path": str(args.calib), "tiles": len(calib), "sha256": calib.manifest["tiles_sha256"],
                             "class_tiles": calib.manifest["class_tiles"], "input_size": "x".join(map(str, calib.input_size)),
                             "pad_value": calib.manifest["pad_value"]}
    tiles = np.asarray(calib.tiles[:16])
    if fp32 != args.model:
        report = compare({"torch": load_backend(args.model), "fp32": load_backend(fp32)}, tile_batches(tiles, 4))
        result["parity_torch_vs_fp32"] = {"ok": report.ok, "box_max_abs_px": report.pairs[0].box_max_abs,
                                          "score_max_abs": report.pairs[0].score_max_abs}
        print(report.format(), flush=True)

    paths = {"fp32": fp32}
    for variant in [v for v in args.variants.split(",") if v]:
        target, _, method = variant.partition(":")
        name, path = f"int8 {target} {method}", args.out / f"model.int8.{target}.{method}.onnx"
        started = time.perf_counter()
        if not path.is_file():
            quantize(fp32, args.calib, path, QuantOptions(method=method, target=target))
        paths[name] = path
        result["variants"][name] = {"quantize_seconds": round(time.perf_counter() - started, 1),
                                    "settings": read_onnx_meta(path).recipe["convert"][-1]}
        print(f"quantized {path}", flush=True)

    data = load_dataset(args.data, args.split)
    images = np.stack(list(input_images(data.subset(range(4)), calib.input_size, calib.manifest["pad_value"])))
    for name, path in paths.items():
        entry = result["variants"].setdefault(name, {})
        entry["file"] = path.name
        entry["size_mb"] = round(path.stat().st_size / 2**20, 2)
        entry["accuracy"] = evaluate(path, data, args.threads)
        if name != "fp32":
            parity = compare({"fp32": load_backend(fp32), name: load_backend(path)}, tile_batches(tiles, 4)).pairs[0]
            entry["parity_vs_fp32"] = {"ok": parity.ok, "box_max_abs_px": round(parity.box_max_abs, 2),
                                       "score_max_abs": round(parity.score_max_abs, 4),
                                       "detections": list(parity.detections), "matched": parity.matched,
                                       "borderline": parity.borderline, "mismatched": parity.mismatched}
        print(name, json.dumps(entry["accuracy"]), flush=True)
    if args.fp16:  # accuracy only: FP16 is a GPU precision, ONNX Runtime's x86 CPU kernels are not its target
        from bcedge.convert.onnx2fp16 import onnx2fp16

        fp16 = args.out / "model.fp16.onnx"
        if not fp16.is_file():
            onnx2fp16(fp32, fp16)
        accuracy = evaluate(fp16, data, args.threads)
        result["fp16_accuracy"] = {**accuracy, "mAP50_delta_points": round(
            100 * (accuracy["mAP50"] - result["variants"]["fp32"]["accuracy"]["mAP50"]), 2)}
        print("fp16", json.dumps(accuracy), flush=True)
    for batch in (1, 4):
        timings = time_models(paths, images, batch, args.rounds, args.threads)
        for name, value in timings.items():
            result["variants"][name][f"cpu_batch{batch}"] = value
        print(f"batch {batch}", json.dumps(timings), flush=True)
    base = result["variants"]["fp32"]
    for name, entry in result["variants"].items():
        entry["mAP50_delta_points"] = round(100 * (entry["accuracy"]["mAP50"] - base["accuracy"]["mAP50"]), 2)
        entry["mAP_delta_points"] = round(100 * (entry["accuracy"]["mAP"] - base["accuracy"]["mAP"]), 2)
        for batch in (1, 4):
            key = f"cpu_batch{batch}"
            entry[f"speedup_batch{batch}"] = round(base[key]["median_ms_per_image"] / entry[key]["median_ms_per_image"], 2)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.with_suffix(".json").write_text(json.dumps(result, indent=1))
    args.results.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = ["# Explicit INT8 (Q/DQ) vs FP32 in ONNX Runtime, CPU", "",
             f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, {m['platform']}, Python {m['python']}, "
             f"onnxruntime {m['libraries']['onnxruntime']}; load average at start {m['load_average_at_start']}. {m['note']}.", "",
             f"Model: `{result['model']}` ({result['calibration'].get('input_size', '?')} input); evaluated on {result['data']}; "
             f"calibration: {result['calibration']['tiles']} tiles "
             f"(sha256 {result['calibration']['sha256'][:12]}, tiles per class {result['calibration']['class_tiles']}).", "",
             "Q/DQ (ONNX Runtime quantize_static), weights INT8 symmetric per channel; the heads' last convolutions, "
             "final activations and box decoding kept FP32. Target `tensorrt`: signed symmetric INT8 activations on "
             "convolution inputs (the file TensorRT builds); target `cpu`: unsigned asymmetric activations on every "
             "op ONNX Runtime can quantize (its fast x86 path, not for TensorRT). "
             "mAP at a 0.001 score floor with the runtime's decoding and NMS. Speed: median ms per image over "
             "interleaved rounds, ONNX Runtime CPU, 2 threads.", "",
             "| variant | mAP50 | delta mAP50 (points) | mAP | delta mAP | ms/img b1 | speed-up b1 | ms/img b4 | speed-up b4 | size MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, e in result["variants"].items():
        a = e["accuracy"]
        lines.append(f"| {name} | {a['mAP50']:.4f} | {e['mAP50_delta_points']:+.2f} | {a['mAP']:.4f} | {e['mAP_delta_points']:+.2f} | "
                     f"{e['cpu_batch1']['median_ms_per_image']} | {e['speedup_batch1']}x | "
                     f"{e['cpu_batch4']['median_ms_per_image']} | {e['speedup_batch4']}x | {e['size_mb']} |")
    lines += ["", "Per-class AP50:", "", "| variant | " + " | ".join(result["variants"]["fp32"]["accuracy"]["AP50_per_class"]) + " |",
              "|---|" + "---:|" * len(result["variants"]["fp32"]["accuracy"]["AP50_per_class"])]
    for name, e in result["variants"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in e["accuracy"]["AP50_per_class"].values()) + " |")
    if "fp16_accuracy" in result:
        f = result["fp16_accuracy"]
        lines += ["", f"FP16 ONNX (onnx2fp16, sensitive ops FP32), accuracy only: mAP50 {f['mAP50']:.4f} "
                      f"({f['mAP50_delta_points']:+.2f} points vs FP32), mAP {f['mAP']:.4f}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
