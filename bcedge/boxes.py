"""Pairwise box geometry on xyxy arrays (numpy only): the one IoU every part of the package uses.

Boxes with no area count as area 0 and overlap nothing, so their IoU is 0. ``runtime.containment``
measures a different thing (the fraction of one box inside another) and stays there.
"""
from __future__ import annotations

import numpy as np


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) -> (N,) areas, 0 for boxes with a negative side."""
    return np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)


def pairwise_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) -> (N, M) intersection areas."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.prod(np.clip(rb - lt, 0, None), axis=2)


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) xyxy -> (N, M) intersection over union, in float64."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), dtype=np.float64)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    inter = pairwise_intersection(a, b)
    union = box_areas(a)[:, None] + box_areas(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
