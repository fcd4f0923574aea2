"""Synthetic smears for the benchmarks, cached under ``CACHE``, and their ground truth (COCO labels beside each)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from _common import CACHE, log

from bcedge.testing.oracle import Truth


def smear(width: int, height: int, seed: int = 0, fmt: str = "png") -> Path:
    """A synthetic smear (default BCCD-like style, no parasites) cached under ``CACHE``; its labels sit beside it."""
    from bcedge.data.synth import generate_smear

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"smear_{width}x{height}_seed{seed}.{fmt}"
    labels = path.with_suffix(".json")
    if not (path.is_file() and labels.is_file()):
        log(f"generating {path.name} ...")
        started = time.perf_counter()
        generate_smear(width, height, seed=seed, out=path)
        log(f"  done in {time.perf_counter() - started:.1f} s")
    return path


def load_truth(image_path: Path, class_names: list[str] | None = None) -> Truth:
    """The COCO labels next to a generated smear, mapped onto the model's class names (default: the labels' own)."""
    coco = json.loads(image_path.with_suffix(".json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    class_names = class_names or [names[i] for i in sorted(names)]
    index = {n: k for k, n in enumerate(class_names)}
    unknown = sorted({names[a["category_id"]] for a in coco["annotations"]} - set(index))
    if unknown:
        raise ValueError(f"{image_path}: classes {unknown} are not among the model's {class_names}")
    boxes = np.array([a["bbox"] for a in coco["annotations"]], np.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    ids = np.array([index[names[a["category_id"]]] for a in coco["annotations"]], np.int64)
    return Truth(boxes, ids, list(class_names))
