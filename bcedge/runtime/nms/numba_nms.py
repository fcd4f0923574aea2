"""CPU NMS with numba: greedy by score, neighbours found through a spatial grid (fast for 100k boxes)."""
from __future__ import annotations

import numba
import numpy as np

from bcedge.runtime.nms._common import areas32, score_order
from bcedge.runtime.nms._grid import build_grid, gather, iou_gt


def is_available() -> bool:
    return True


def nms(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: np.float32) -> np.ndarray:
    if len(xyxy) == 0:
        return np.zeros(0, np.int64)
    grid = build_grid(xyxy)
    return _greedy(xyxy, areas32(xyxy), class_ids, score_order(scores), np.float32(iou), grid)


@numba.njit(cache=True, nogil=True)
def _greedy(xyxy, areas, cls, order, thr, grid):
    n = xyxy.shape[0]
    rank = np.empty(n, np.int64)
    for r in range(n):
        rank[order[r]] = r
    suppressed = np.zeros(n, np.bool_)
    stamp = np.full(n, -1, np.int64)
    cand = np.empty(n, np.int64)
    keep = np.empty(n, np.int64)
    nk = 0
    for r in range(n):
        i = order[r]
        if suppressed[i]:
            continue
        keep[nk] = i
        nk += 1
        m = gather(grid, xyxy[i], stamp, i, cand)
        for p in range(m):
            j = cand[p]
            if suppressed[j] or rank[j] <= r or cls[j] != cls[i]:
                continue
            if iou_gt(xyxy, areas, i, j, thr):
                suppressed[j] = True
    return keep[:nk].copy()
