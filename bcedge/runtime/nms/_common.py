"""Input checks and the shared conventions every NMS backend follows.

All backends compute IoU the same way in float32, in the same order of operations, so that they
keep exactly the same boxes::

    w = max(min(x1i, x1j) - max(x0i, x0j), 0); h likewise; inter = w * h
    union = (area_i + area_j) - inter;  suppress j  <=>  union > 0 and inter / union > iou

Boxes are visited by score, highest first, ties broken by the lower index (a stable sort).
"""
from __future__ import annotations

import numpy as np


def prepare(xyxy, scores, class_ids, iou: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.float32]:
    """Return contiguous float32 boxes (N, 4), float32 scores, int64 class ids and the threshold."""
    xyxy = np.ascontiguousarray(np.asarray(xyxy, dtype=np.float32).reshape(-1, 4))
    scores = np.ascontiguousarray(np.asarray(scores, dtype=np.float32).reshape(-1))
    class_ids = np.ascontiguousarray(np.asarray(class_ids, dtype=np.int64).reshape(-1))
    n = len(xyxy)
    if len(scores) != n or len(class_ids) != n:
        raise ValueError(f"nms: {n} boxes but {len(scores)} scores and {len(class_ids)} class ids")
    if not np.isfinite(xyxy).all():
        raise ValueError("nms: boxes contain NaN or infinite coordinates")
    if not np.isfinite(scores).all():
        raise ValueError("nms: scores contain NaN or infinite values")
    if not (0.0 <= float(iou) <= 1.0):
        raise ValueError(f"nms: iou threshold must be in [0, 1], got {iou!r}")
    return xyxy, scores, class_ids, np.float32(iou)


def score_order(scores: np.ndarray) -> np.ndarray:
    """Indices by score, highest first; equal scores keep index order."""
    return np.argsort(-scores, kind="stable").astype(np.int64)


def areas32(xyxy: np.ndarray) -> np.ndarray:
    """Box areas in float32, computed exactly as every backend does."""
    return (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])


def sort_by_rank(keep: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Order kept indices by score (desc), ties by index."""
    keep = np.asarray(keep, dtype=np.int64)
    return keep[np.lexsort((keep, -scores[keep]))]
