"""Evaluate a model exactly as ``bcedge count`` runs it: any image size, through ``Counter``
(scale, tiles, merge, containment), with metrics per source group and count error beside mAP.

Detections are collected once at a low score floor (for mAP); counts are judged at the model's
operating thresholds, which is what a user's ``bcedge count`` reports.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Callable

import numpy as np

from bcedge.artifact import ModelMeta
from bcedge.data.annotations import Dataset
from bcedge.data.class_names import relabelled
from bcedge.detections import Detections
from bcedge.evaluate import EVAL_SCORE_FLOOR, summarise
from bcedge.evaluate.onebox import boxes_per_white_cell
from bcedge.evaluate.operating import match_scores, tune_thresholds
from bcedge.runtime.scale import History


def image_groups(data: Dataset) -> list[str]:
    """Each image's source group; without groups, its frame size (one microscope, one camera)."""
    if any(r.group for r in data.images):
        return [r.group or "(none)" for r in data.images]
    from bcedge.data.multisource import size_groups

    names = size_groups(data.images)
    return [names[(r.width, r.height)] for r in data.images]


def predict(counter, data: Dataset, progress: Callable[[int, int], None] | None = None,
            remember_scale: bool = True) -> tuple[list[Detections], list[dict]]:
    """Detections (image pixels) and the scale used, per image, from ``counter.count_file``.

    ``remember_scale=False``: each image is counted as if it were the first (the auto scale starts from the
    training images' scale, not the last images'), as ``bcedge count`` does with one image.
    """
    detections, scales = [], []
    for index, record in enumerate(data.images):
        if not remember_scale:
            counter.scale_history = History()
        result = counter.count_file(record.image_path)
        detections.append(result.detections)
        scales.append(result.scale.to_dict() if result.scale else {})
        if progress:
            progress(index + 1, len(data))
    return detections, scales


def evaluate_runtime(model: str | Path, data: Dataset, tune: bool = False, backend: str = "auto", device: str = "auto",
                     progress=None, class_map: Mapping[str, str | None] | None = None, remember_scale: bool = True,
                     **counter_options) -> tuple[dict, ModelMeta]:
    """Metrics of ``model`` on ``data`` through the counting runtime; with ``tune``, per-class
    thresholds are chosen on ``data`` and stored in the returned metadata (the caller saves it).

    The data's class names are matched to the model's (other spellings, common names, ``class_map``:
    ``bcedge.data.class_names``); the names that changed are in ``metrics["class_map"]``. ``remember_scale``:
    see ``predict``.
    """
    from bcedge.runtime.counter import Counter

    counter = Counter.load(model, backend=backend, device=device, score_floor=EVAL_SCORE_FLOOR, **counter_options)
    meta = counter.meta
    data, renamed = relabelled(data, meta.class_names, class_map)
    started = time.perf_counter()
    predictions, scales = predict(counter, data, progress, remember_scale)
    seconds = time.perf_counter() - started
    if tune:
        meta.score_thresholds = tune_thresholds(match_scores(data, predictions, meta.class_names))
    metrics = with_groups(data, predictions, meta)
    metrics["scale"] = scale_summary(scales)
    if renamed:
        metrics["class_map"] = renamed
    metrics["one_box_per_white_cell"] = boxes_per_white_cell(
        data, predictions, meta.class_names, {n: meta.score_threshold(n) for n in meta.class_names})
    metrics["runtime"] = {"backend": counter.backend.describe(), "seconds": round(seconds, 1), **{k: v for k, v in counter_options.items()
                                                                     if isinstance(v, (int, float, str, type(None)))}}
    return metrics, meta


def with_groups(data: Dataset, predictions: list[Detections], meta: ModelMeta) -> dict:
    """Overall metrics plus the same per source group (when there are several)."""
    metrics = summarise(data, predictions, meta)
    groups = image_groups(data)
    names = sorted(set(groups))
    if len(names) > 1:
        metrics["groups"] = {}
        for name in names:
            index = [i for i, g in enumerate(groups) if g == name]
            metrics["groups"][name] = summarise(data.subset(index), [predictions[i] for i in index], meta)
    return metrics


def scale_summary(scales: list[dict]) -> dict:
    factors = np.array([s.get("factor", 1.0) for s in scales], dtype=np.float64)
    methods: dict[str, int] = {}
    for s in scales:
        methods[s.get("method", "none")] = methods.get(s.get("method", "none"), 0) + 1
    passes = [s.get("passes", 1) for s in scales]
    return {"methods": methods, "factor_median": round(float(np.median(factors)), 3) if len(factors) else None,
            "second_pass_share": round(float(np.mean([p > 1 for p in passes])), 3) if passes else 0.0,
            "passes_mean": round(float(np.mean(passes)), 2) if passes else 0.0}
