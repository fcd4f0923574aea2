"""Non-maximum *merging* (numba): boxes that match a higher-scoring box are merged into it.

``greedy_nmm`` reimplements SAHI's GREEDYNMM (sahi/postprocess/combine.py, ``batched_greedy_nmm``
plus ``GreedyNMMPostprocess``), class-aware: take the best remaining box, remove from the pool
every remaining box whose intersection-over-smaller (IoS) with it is >= the threshold, then merge
those, best first, into the kept box when their IoS with the box merged so far is still above the
threshold (union of boxes, the kept box's score). ``cross_tile_merge`` is a narrower variant for
tiling leftovers: only boxes from *different* tiles merge, so touching cells inside one tile stay
apart. Both find candidates through the spatial grid, so 100k boxes take milliseconds.
"""
from __future__ import annotations

import numba
import numpy as np

from bcedge.runtime.nms._common import areas32, prepare, score_order
from bcedge.runtime.nms._grid import build_grid, gather


def greedy_nmm(xyxy, scores, class_ids, ios_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """SAHI GREEDYNMM with IOS matching, per class. Returns (kept indices by score, merged boxes (K, 4))."""
    xyxy, scores, class_ids, thr = _prepare(xyxy, scores, class_ids, ios_threshold)
    if len(xyxy) == 0:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    return _greedy_nmm(xyxy, areas32(xyxy), class_ids, score_order(scores), thr, build_grid(xyxy))


def cross_tile_merge(xyxy, scores, class_ids, tile_ids, ios_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Merge same-class boxes from different tiles whose IoS with a better box exceeds the threshold."""
    xyxy, scores, class_ids, thr = _prepare(xyxy, scores, class_ids, ios_threshold)
    tile_ids = np.ascontiguousarray(np.asarray(tile_ids, dtype=np.int64).reshape(-1))
    if len(tile_ids) != len(xyxy):
        raise ValueError(f"cross_tile_merge: {len(xyxy)} boxes but {len(tile_ids)} tile ids")
    if len(xyxy) == 0:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    return _cross_tile(xyxy, areas32(xyxy), class_ids, tile_ids, score_order(scores), thr, build_grid(xyxy))


def _prepare(xyxy, scores, class_ids, ios_threshold):
    if not 0.0 < float(ios_threshold) <= 1.0:  # 0 would match boxes that do not even touch
        raise ValueError(f"IoS threshold must be in (0, 1], got {ios_threshold!r}")
    return prepare(xyxy, scores, class_ids, ios_threshold)


@numba.njit(cache=True, nogil=True, inline="always")
def _ios(b, area_b, xyxy, areas, j):
    """Intersection over the smaller area, float32; 0 when the smaller box is empty."""
    zero = np.float32(0.0)
    w = min(b[2], xyxy[j, 2]) - max(b[0], xyxy[j, 0])
    h = min(b[3], xyxy[j, 3]) - max(b[1], xyxy[j, 1])
    smaller = min(area_b, areas[j])
    if w <= zero or h <= zero or smaller <= zero:
        return zero
    return (w * h) / smaller


@numba.njit(cache=True, nogil=True, inline="always")
def _grow(b, xyxy, j):
    b[0] = min(b[0], xyxy[j, 0])
    b[1] = min(b[1], xyxy[j, 1])
    b[2] = max(b[2], xyxy[j, 2])
    b[3] = max(b[3], xyxy[j, 3])


@numba.njit(cache=True, nogil=True)
def _greedy_nmm(xyxy, areas, cls, order, thr, grid):
    n = xyxy.shape[0]
    rank = np.empty(n, np.int64)
    for r in range(n):
        rank[order[r]] = r
    taken = np.zeros(n, np.bool_)
    stamp = np.full(n, -1, np.int64)
    cand = np.empty(n, np.int64)
    matched = np.empty(n, np.int64)
    keep = np.empty(n, np.int64)
    merged = np.empty((n, 4), np.float32)
    box = np.empty(4, np.float32)
    nk = 0
    for r in range(n):
        i = order[r]
        if taken[i]:
            continue
        taken[i] = True
        box[:] = xyxy[i]
        m = gather(grid, box, stamp, i, cand)
        nm = 0
        for p in range(m):
            j = cand[p]
            if not taken[j] and cls[j] == cls[i] and _ios(box, areas[i], xyxy, areas, j) >= thr:
                taken[j] = True
                matched[nm] = j
                nm += 1
        # merge best first, re-checking each against the box grown so far (SAHI's has_match)
        ranks = np.empty(nm, np.int64)
        for p in range(nm):
            ranks[p] = rank[matched[p]]
        for p in np.argsort(ranks):
            j = matched[p]
            area_box = (box[2] - box[0]) * (box[3] - box[1])
            if _ios(box, area_box, xyxy, areas, j) > thr:
                _grow(box, xyxy, j)
        keep[nk] = i
        merged[nk] = box
        nk += 1
    return keep[:nk].copy(), merged[:nk].copy()


@numba.njit(cache=True, nogil=True)
def _cross_tile(xyxy, areas, cls, tiles, order, thr, grid):
    n = xyxy.shape[0]
    state = np.zeros(n, np.int8)  # 0 open, 1 kept, 2 merged into a kept box
    stamp = np.full(n, -1, np.int64)
    cand = np.empty(n, np.int64)
    keep = np.empty(n, np.int64)
    merged = np.empty((n, 4), np.float32)
    box = np.empty(4, np.float32)
    nk = 0
    for r in range(n):
        i = order[r]
        if state[i] != 0:
            continue
        state[i] = 1
        box[:] = xyxy[i]
        m = gather(grid, box, stamp, i, cand)
        for p in range(m):
            j = cand[p]
            if state[j] == 0 and cls[j] == cls[i] and tiles[j] != tiles[i]:
                if _ios(xyxy[i], areas[i], xyxy, areas, j) > thr:
                    state[j] = 2
                    _grow(box, xyxy, j)
        keep[nk] = i
        merged[nk] = box
        nk += 1
    return keep[:nk].copy(), merged[:nk].copy()
