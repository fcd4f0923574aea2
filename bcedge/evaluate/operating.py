"""What a counting user sees at the operating thresholds: precision, recall, count error; and tuning them."""
from __future__ import annotations

import math

import numpy as np

from bcedge.boxes import pairwise_iou
from bcedge.data.annotations import Dataset
from bcedge.detections import Detections


def match_scores(data: Dataset, predictions: list[Detections], class_names: list[str], iou: float = 0.5):
    """Per class: arrays (scores, is_true_positive) over all images, and the number of ground-truth boxes."""
    out = {name: ([], [], 0) for name in class_names}
    for record, dets in zip(data.images, predictions):
        for k, name in enumerate(class_names):
            gt = record.boxes[np.array([label == name for label in record.labels], dtype=bool)] if len(record.labels) else np.zeros((0, 4))
            mine = dets[dets.class_ids == k]
            order = np.argsort(-mine.scores, kind="stable")
            ious = pairwise_iou(mine.xyxy[order], gt) if len(gt) and len(mine) else np.zeros((len(mine), len(gt)))
            taken = np.zeros(len(gt), dtype=bool)
            hits = []
            for row in ious:
                row = np.where(taken, -1, row)
                j = int(np.argmax(row)) if len(row) else -1
                hit = j >= 0 and row[j] >= iou
                if hit:
                    taken[j] = True
                hits.append(hit)
            scores, tps, n_gt = out[name]
            out[name] = (scores + mine.scores[order].tolist(), tps + hits, n_gt + len(gt))
    return {n: (np.array(s, np.float32), np.array(t, bool), g) for n, (s, t, g) in out.items()}


def tune_thresholds(matches: dict) -> dict[str, float]:
    """Per-class score threshold that maximises F1 at IoU 0.5 (counting needs precision and recall alike)."""
    chosen = {}
    for name, (scores, tps, n_gt) in matches.items():
        if len(scores) == 0 or n_gt == 0:
            chosen[name] = 0.5
            continue
        order = np.argsort(-scores, kind="stable")
        tp = np.cumsum(tps[order])
        precision = tp / np.arange(1, len(tp) + 1)
        recall = tp / n_gt
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-9)
        best = int(np.argmax(f1))
        chosen[name] = math.floor(float(scores[order][best]) * 1e4) / 1e4   # rounded down: that detection still counts
    return chosen


def operating_point(data: Dataset, predictions: list[Detections], class_names: list[str],
                    thresholds: dict[str, float]) -> dict:
    """Precision, recall and count error per class at the given score thresholds."""
    kept = []
    for dets in predictions:
        limit = np.array([thresholds.get(n, 0.5) for n in class_names], dtype=np.float32)
        kept.append(dets[dets.scores >= limit[dets.class_ids]] if len(dets) else dets)
    matches = match_scores(data, kept, class_names)
    result = {}
    for k, name in enumerate(class_names):
        scores, tps, n_gt = matches[name]
        predicted = np.array([int((d.class_ids == k).sum()) for d in kept])
        truth = np.array([sum(label == name for label in r.labels) for r in data.images])
        abs_err = np.abs(predicted - truth)
        result[name] = {
            "threshold": thresholds.get(name, 0.5),
            "precision": round(float(tps.sum() / max(len(tps), 1)), 4),
            "recall": round(float(tps.sum() / max(n_gt, 1)), 4),
            "count_mae": round(float(abs_err.mean()), 4) if len(abs_err) else 0.0,
            "count_mre": round(float((abs_err / np.maximum(truth, 1)).mean()), 4) if len(abs_err) else 0.0,
            "count_medre": round(float(np.median(abs_err / np.maximum(truth, 1))), 4) if len(abs_err) else 0.0,
            "count_bias": round(float((predicted - truth).mean()), 4) if len(abs_err) else 0.0,
            "predicted": int(predicted.sum()), "truth": int(truth.sum()),
        }
    return result


COUNT_GRID = tuple(round(0.2 + 0.01 * i, 2) for i in range(61))   # 0.20 .. 0.80


def tune_count_thresholds(data: Dataset, predictions: list[Detections], class_names: list[str],
                          near: dict[str, float] | None = None) -> dict[str, float]:
    """Per class, the score threshold with the smallest mean absolute count error per image: a counter's
    operating point (max F1 can leave counts biased). Ties go to the threshold nearest ``near``."""
    chosen = {}
    for k, name in enumerate(class_names):
        truth = np.array([sum(label == name for label in r.labels) for r in data.images])
        scores = [d.scores[d.class_ids == k] for d in predictions]
        errors = [float(np.abs(np.array([int((s >= t).sum()) for s in scores]) - truth).mean()) for t in COUNT_GRID]
        best = min(errors)
        ties = [t for t, e in zip(COUNT_GRID, errors) if e <= best + 1e-9]
        anchor = (near or {}).get(name, ties[len(ties) // 2])
        chosen[name] = min(ties, key=lambda t: abs(t - anchor))
    return chosen
