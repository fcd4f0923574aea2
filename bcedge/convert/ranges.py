"""Calibration ranges averaged over several draws of tiles.

A tensor's calibrated range follows the extremes of the tiles drawn. On the default model, four draws of
400 training tiles each moved the TensorRT-target graph (min-max ranges) by up to 0.7 mAP50 points per
validation split, in opposite directions on the two splits
(``benchmarks/results/int8_tensorrt_target_trials.md``). Averaging each tensor's range over the draws keeps
the typical extreme of a draw of that size and sheds most of that spread; pooling the draws instead (one
range over all their tiles) widens every range to the rarest extreme seen.

The ranges are ONNX Runtime's calibration caches (``quantize_static(calibration_cache_path=...)``), one per
draw. Only each tensor's lowest and highest value are averaged: they are all the Q/DQ quantizer reads.
A histogram method's bins are dropped from the average, since they describe one draw only.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

BOUNDS = ("lowest", "highest")


def _number(value) -> float:
    """A bound as ONNX Runtime writes it: a float, or {"data": float or [float], ...}."""
    data = value["data"] if isinstance(value, dict) else value
    return float(np.asarray(data, dtype=np.float64).reshape(-1)[0])


def _like(value, number: float):
    """``number`` in the shape ``value`` was written in."""
    if not isinstance(value, dict):
        return number
    return {**value, "data": [number] if isinstance(value["data"], list) else number}


def average_ranges(caches: Sequence[str | Path], out: str | Path) -> Path:
    """Write to ``out`` a calibration cache whose every tensor range is the mean of those in ``caches``."""
    loaded = [json.loads(Path(c).read_text()) for c in caches]
    if not loaded:
        raise ValueError("no calibration caches to average")
    first = loaded[0]
    methods = {json.dumps(c.get("calibration_method"), sort_keys=True) for c in loaded}
    if len(methods) > 1:
        raise ValueError(f"calibration caches made with different methods cannot be averaged: {sorted(methods)}")
    names = set(first["data"])
    for path, cache in zip(caches, loaded):
        if set(cache["data"]) != names:
            raise ValueError(f"{path}: ranges for other tensors than {caches[0]} (another model?)")
    averaged = {}
    for name, entry in first["data"].items():
        kept = {k: v for k, v in entry.items() if k in BOUNDS or k == "CLS"}
        for bound in BOUNDS:
            kept[bound] = _like(entry[bound], float(np.mean([_number(c["data"][name][bound]) for c in loaded])))
        averaged[name] = kept
    out = Path(out)
    out.write_text(json.dumps({**first, "data": averaged}))
    return out
