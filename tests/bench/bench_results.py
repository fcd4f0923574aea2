"""Canned benchmark results for the report and CLI tests (shapes as the runner writes them)."""
from __future__ import annotations

import copy

from bcedge.bench.matrix import get_profile


def _stats(p50: float, n: int = 10) -> dict:
    return {"n": n, "mean_ms": p50 * 1.05, "std_ms": 1.0, "min_ms": p50 * 0.9, "p50_ms": p50, "p95_ms": p50 * 1.3,
            "p99_ms": p50 * 1.5, "max_ms": p50 * 1.6,
            "outliers": {"rule": "Tukey fences, 1.5 IQR", "count": 1, "slow": 1, "fast": 0, "indices": [3],
                         "values_ms": [p50 * 1.6]}, "warmup_ms": [p50 * 3]}


def ok_cell(arch: str, runner: str, precision: str, batch: int, p50: float, two_stage: bool = False,
            accuracy: dict | None = None, power: dict | None = None) -> dict:
    backend, device = runner.split(":")
    cell = {"arch": arch, "backend": backend, "device": device, "precision": precision, "batch": batch,
            "tile": [640, 480], "key": f"{arch}/{runner}/{precision}/b{batch}/640x480", "two_stage": two_stage,
            "trained": accuracy is not None and accuracy.get("status") == "ok", "artifact": "model.onnx", "size_mb": 13.2,
            "status": "ok", "runner": runner, "latency_per_tile": _stats(p50), "latency_per_batch": _stats(p50 * batch),
            "throughput": {"tiles_per_s": 1000 / p50, "megapixels_per_s": 1000 / p50 * 0.3072},
            "smear": {"size": [1920, 1440], "tiles": 16, "overlap": 232, "runs_s": [2.0, 2.1], "median_s": 2.05,
                      "cells_counted": 100},
            "memory": {"host_peak_mb": 700.0, "host_peak_infer_mb": 400.0, "host_baseline_mb": 100.0,
                       "host_delta_mb": 600.0, "device_peak_mb": None, "device_method": "none", "method": "ru_maxrss"},
            "accuracy": accuracy or {"status": "not trained"}, "other_cpu_share": 0.25}
    if power:
        cell["power"] = power
    return cell


def bad_cell(arch: str, runner: str, precision: str, batch: int, status: str, two_stage: bool = False) -> dict:
    backend, device = runner.split(":")
    return {"arch": arch, "backend": backend, "device": device, "precision": precision, "batch": batch, "tile": [640, 480],
            "key": f"{arch}/{runner}/{precision}/b{batch}/640x480", "two_stage": two_stage, "trained": False, "status": status}


ACC = {"status": "ok", "mAP50": 0.88, "mAP": 0.50, "count_mae": {"RBC": 3.2, "WBC": 0.1, "Platelets": 0.7}, "images": 87}


def results(cpu: str = "Test CPU", scale: float = 1.0, power: bool = False) -> dict:
    fcos, frcnn = "fcos_efficientnet_lite0", "faster_rcnn_efficientnet_lite0"
    watts = {"tool": "tegrastats", "samples": 10, "total_power_mw": {"mean": 5000.0, "max": 6000.0},
             "gpu_pct": {"mean": 90.0, "max": 99.0}} if power else None
    cells = [
        ok_cell(fcos, "onnxruntime:cpu", "fp32", 1, 100 * scale, accuracy=dict(ACC), power=watts),
        ok_cell(fcos, "onnxruntime:cpu", "fp32", 4, 90 * scale, accuracy={**ACC, "from_batch": 1}),
        ok_cell(fcos, "onnxruntime:cpu", "int8", 1, 60 * scale, accuracy={**ACC, "mAP50": 0.85}),
        ok_cell(frcnn, "onnxruntime:cpu", "fp32", 1, 300 * scale, two_stage=True),
        bad_cell(frcnn, "onnxruntime:cpu", "fp16", 1, "export failed: RuntimeError: no ONNX graph | really", True),
        bad_cell(frcnn, "onnxruntime:cpu", "fp16", 4, "export failed: RuntimeError: no ONNX graph | really", True),
        bad_cell(fcos, "torch:cpu", "fp16", 1, "unsupported here: the torch backend runs FP32 checkpoints only"),
    ]
    profile = get_profile("cpu").to_dict()
    return copy.deepcopy({"format": "bcedge-bench", "version": 1, "profile": profile, "started": "2026-01-01T00:00:00+00:00",
                          "wall_s": 12.0, "accuracy_data": "bccd (val)",
                          "machine": {"cpu": cpu, "logical_cpus": 2, "memory_gb": 8.0, "gpus": [], "platform": "Linux",
                                      "python": "3.11", "libraries": {"onnxruntime": "1.0"},
                                      "load_average_at_start": [0.1, 0.1, 0.1]},
                          "cells": cells})


def write_tiny_voc(root, size: tuple[int, int] = (64, 64), images: int = 2):
    """A VOC folder of ``images`` flat pink images with a few dark discs labelled RBC/WBC/Platelets."""
    import cv2
    import numpy as np

    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    width, height = size
    boxes = [("RBC", 4, 4, 24, 24), ("WBC", 30, 30, 60, 60), ("Platelets", 40, 6, 50, 16)]
    for i in range(images):
        image = np.full((height, width, 3), (200, 170, 190), np.uint8)
        for _, x0, y0, x1, y1 in boxes:
            cv2.circle(image, ((x0 + x1) // 2, (y0 + y1) // 2), (x1 - x0) // 2, (120, 60, 140), -1)
        cv2.imwrite(str(root / "JPEGImages" / f"img{i}.png"), image)
        objects = "".join(f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                          f"<ymax>{d}</ymax></bndbox></object>" for n, a, b, c, d in boxes)
        (root / "Annotations" / f"img{i}.xml").write_text(
            f"<annotation><filename>img{i}.png</filename><size><width>{width}</width><height>{height}</height>"
            f"<depth>3</depth></size>{objects}</annotation>")
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"img{i}\n" for i in range(images)))
    return root
