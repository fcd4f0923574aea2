"""Build the bundled default model from a trained checkpoint: tune, export, evaluate, write its model card.

    python export/build_default_model.py \\
        --checkpoint export/checkpoints/fcos_efficientnet_lite0_bccd/checkpoint.pt --data ../shared/data/bccd

Steps, all through the library:
1. tune the per-class score thresholds and the NMS IoU on the validation split (torch, 640x480);
2. export the deploy graph to ONNX at the runtime tile size (default 640x480, the training size: a
   BCCD-sized frame is one exact tile, with no padding; the FCOS graph is fully convolutional, so
   640x640 is possible too: fewer tiles on large smears, but BCCD frames then carry 160 rows of
   padding, which cost 0.2 mAP50 points on BCCD val for the 30-epoch model);
3. evaluate the ONNX artifact on the validation split exactly as `bcedge eval default` does;
4. time it on this CPU (one BCCD image = one padded tile, batch 1, after warm-up);
5. quantize it for the CPU (Q/DQ INT8, ONNX Runtime's x86 path) on the calibration set of its tile size,
   evaluate and time that too: the bundled ``default-int8``;
6. write bcedge/assets/models/default.onnx, default.int8.onnx, default.md (the model card) and a results JSON.
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

from bcedge.backends import load_backend, preprocess  # noqa: E402
from bcedge.bench.machine import describe_machine, machine_line  # noqa: E402
from bcedge.convert.quantize import QuantOptions, quantize  # noqa: E402
from bcedge.convert.torch2onnx import torch2onnx  # noqa: E402
from bcedge.evaluate import evaluate_detector  # noqa: E402
from bcedge.evaluate.artifacts import evaluate_artifact  # noqa: E402
from bcedge.models import largest_object, load_detector  # noqa: E402
from bcedge.train.prepare import load_training_data  # noqa: E402

ASSETS = ROOT / "bcedge" / "assets" / "models"
RESULTS = ROOT / "benchmarks" / "results"


def cpu_latency_ms(model: Path, repeats: int = 20) -> dict:
    with load_backend(model, device="cpu") as runner:
        width, height = runner.meta.input_size
        batch = preprocess(np.full((1, height, width, 3), 127, np.uint8))
        runner.warmup(3)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            runner.infer(batch)
            times.append((time.perf_counter() - started) * 1e3)
    return {"median_ms": round(statistics.median(times), 1), "p90_ms": round(float(np.percentile(times, 90)), 1),
            "tile": f"{width}x{height}", "batch": 1, "runs": repeats}


def model_card(meta, metrics: dict, torch_metrics: dict, latency: dict, size_mb: float, history: list[dict],
               machine: dict, int8: dict) -> str:
    rows = "\n".join(
        f"| {name} | {m['AP50']:.3f} | {m['AP']:.3f} | {m['threshold']:.2f} | {m['precision']:.3f} | {m['recall']:.3f} | "
        f"{metrics['count_error'][name]['count_mae']:.2f} | {metrics['count_error'][name]['count_mre'] * 100:.1f}% |"
        for name, m in metrics["per_class"].items())
    recipe = meta.recipe
    train_minutes = sum(h.get("seconds", 0) for h in history) / 60
    return f"""# bcedge default model: {meta.arch}

Counts red cells, white cells and platelets in thin blood smears imaged like BCCD (640x480 camera frames
at about 100 px per red cell). Bundled as `bcedge/assets/models/default.onnx`; `bcedge count` uses it.

| | |
|---|---|
| architecture | FCOS (single-stage, anchor-free) on EfficientNet-Lite0 + FPN P3-P7 (128 channels) |
| backbone weights | ImageNet EfficientNet-Lite0 ({meta.pretrained.get('file')}, sha256 {str(meta.pretrained.get('sha256'))[:12]}...) |
| classes | {', '.join(meta.class_names)} |
| training data | BCCD train split: {meta.train_data.get('images')} images, boxes {meta.train_data.get('boxes')} (fingerprint {meta.train_data.get('sha256')}); zero-size boxes dropped |
| recipe | SGD lr {recipe.get('lr')} momentum {recipe.get('momentum')} wd {recipe.get('weight_decay')}, batch {recipe.get('batch_size')}, warm-up {recipe.get('warmup_iters')} it then {recipe.get('schedule')} decay, {recipe.get('epochs')} epochs; flips, 90-degree turns, scale jitter {tuple(recipe.get('augment', {}).get('scale', ()))}, HSV/stain jitter; repeat-factor sampling for rare classes; frozen BatchNorm statistics |
| training time | {train_minutes:.0f} min on {machine_line(machine)} (CPU only, shared with other jobs) |
| model input (tile) | {meta.input_size[0]}x{meta.input_size[1]} RGB, normalised inside the graph; larger images are tiled with {meta.max_object_size:.0f}+ px overlap |
| operating point | per-class score thresholds and NMS IoU {meta.nms_iou} tuned on BCCD val (max F1 at IoU 0.5) |
| size | {size_mb:.1f} MB (ONNX, FP32) |
| CPU latency | {latency['median_ms']} ms median per {latency['tile']} tile, batch 1, ONNX Runtime, {machine_line(machine)} |

## Accuracy on BCCD val (87 images), this ONNX file

mAP50 **{metrics['mAP50']:.3f}**, COCO mAP {metrics['mAP']:.3f}, mAP75 {metrics['mAP75']:.3f}
(the same checkpoint in PyTorch at 640x480: mAP50 {torch_metrics['mAP50']:.3f}, mAP {torch_metrics['mAP']:.3f}).

| class | AP50 | AP | threshold | precision | recall | count MAE / image | count error |
|---|---|---|---|---|---|---|---|
{rows}

Reproduce: `bcedge eval default --data ../shared/data/bccd --split val`.

## INT8 for CPUs: `default-int8`

`bcedge count --model default-int8 ...` runs `default.int8.onnx`: the same model as Q/DQ INT8 (weights per
channel, unsigned activations, the heads' last convolutions and box decoding in FP32), calibrated on
{int8['calibration']}. mAP50 {int8['metrics']['mAP50']:.3f} ({(int8['metrics']['mAP50'] - metrics['mAP50']) * 100:+.1f} points), COCO mAP
{int8['metrics']['mAP']:.3f}; per class AP50 {', '.join(f"{n} {m['AP50']:.3f}" for n, m in int8['metrics']['per_class'].items())};
{int8['latency']['median_ms']} ms median per tile (batch 1), {latency['median_ms'] / int8['latency']['median_ms']:.1f}x the FP32
file's speed in the same run; {int8['size_mb']:.1f} MB. For ONNX Runtime on x86 CPUs; TensorRT builds its
own INT8 from `default.onnx` (see export/README.md).

Caveats, honestly:
- The thresholds were tuned on the same val split these numbers come from, so precision, recall and count
  error are optimistic; mAP does not depend on the thresholds (only the NMS IoU was chosen on val).
- BCCD leaves some RBCs unlabelled, which counts as false positives here.
- Trained on 205 images from one lab's camera: expect to fine-tune on your own smears (stain, magnification).
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--tile", default="640x480")
    parser.add_argument("--out", type=Path, default=ASSETS / "default.onnx")
    parser.add_argument("--calib", type=Path, default=ROOT / "calibration" / "bccd_640x480",
                        help="calibration set of the tile size (calibration/build_bccd.py) for the INT8 file")
    parser.add_argument("--results", type=Path, default=RESULTS / "default_model_bccd_val.json")
    args = parser.parse_args()
    tile = tuple(int(v) for v in args.tile.split("x"))
    val = load_training_data(args.data, args.split)

    detector, _ = load_detector(args.checkpoint)
    torch_metrics = evaluate_detector(detector, val, tune=True)
    print(f"torch at {detector.meta.input_size}: mAP50 {torch_metrics['mAP50']}, mAP {torch_metrics['mAP']}; "
          f"tuned NMS IoU {detector.meta.nms_iou}, thresholds {detector.meta.score_thresholds}")
    train_boxes = np.concatenate([r.boxes for r in load_training_data(args.data, "train").images])
    detector.meta.max_object_size = largest_object(train_boxes)  # the runtime's overlap floor
    detector.meta.input_size = tile
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch2onnx(detector, args.out)

    metrics, meta = evaluate_artifact(args.out, val)
    int8_path = quantize(args.out, args.calib, args.out.with_suffix(".int8.onnx"), QuantOptions(target="cpu"))
    int8_metrics, _ = evaluate_artifact(int8_path, val)
    latency, int8_latency = cpu_latency_ms(args.out), cpu_latency_ms(int8_path)
    int8 = {"metrics": int8_metrics, "latency": int8_latency, "size_mb": int8_path.stat().st_size / 2**20,
            "calibration": f"`{args.calib.relative_to(ROOT) if args.calib.is_relative_to(ROOT) else args.calib}` "
                           "(BCCD train tiles, never val)"}
    size_mb = args.out.stat().st_size / 2**20
    history_file = args.checkpoint.parent / "history.jsonl"
    history = [json.loads(line) for line in history_file.read_text().splitlines()] if history_file.exists() else []
    machine = describe_machine()
    card = model_card(meta, metrics, torch_metrics, latency, size_mb, history, machine, int8)
    args.out.with_suffix(".md").write_text(card)
    summary = {k: v for k, v in metrics.items() if k != "pr_curves"}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(
        {"model": meta.arch, "tile": list(tile), "onnx": summary,
         "torch_640x480": {k: v for k, v in torch_metrics.items() if k != "pr_curves"},
         "cpu_latency": latency, "size_mb": round(size_mb, 2),
         "int8_cpu": {"onnx": {k: v for k, v in int8_metrics.items() if k != "pr_curves"}, "cpu_latency": int8_latency,
                      "size_mb": round(int8["size_mb"], 2)},
         "training_history": history, "machine": machine}, indent=1))
    print(card)
    return 0


if __name__ == "__main__":
    sys.exit(main())
