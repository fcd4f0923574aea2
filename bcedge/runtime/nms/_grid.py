"""A uniform spatial grid over boxes (numba), so neighbour queries are not O(n^2).

Each box is registered in every grid cell it overlaps; a query visits the cells a box overlaps and
deduplicates candidates with a stamp array. The cell size adapts to the boxes: cells are small
compared to a smear, so each box lands in a handful of cells.
"""
from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np


class Grid(NamedTuple):
    ox: float  # origin of cell (0, 0)
    oy: float
    cell: float  # cell side, px
    gx: int  # cells across
    gy: int  # cells down
    starts: np.ndarray  # (gx * gy + 1,) int64 CSR offsets into items
    items: np.ndarray  # box indices, cell by cell


def build_grid(xyxy: np.ndarray, max_registrations_per_box: float = 8.0) -> Grid:
    """Grid for (N, 4) float32 boxes: cell size from the box sizes, grown until registrations stay bounded."""
    n = len(xyxy)
    if n == 0:
        return Grid(0.0, 0.0, 1.0, 1, 1, np.zeros(2, np.int64), np.zeros(0, np.int64))
    ox, oy = float(xyxy[:, 0].min()), float(xyxy[:, 1].min())
    span_x = max(float(xyxy[:, 2].max()) - ox, 1.0)
    span_y = max(float(xyxy[:, 3].max()) - oy, 1.0)
    sizes = np.maximum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
    cell = max(float(np.percentile(sizes, 90)) * 2.0, 1e-3, max(span_x, span_y) / 4096.0)
    budget = max_registrations_per_box * n + 64
    while True:
        gx, gy = int(span_x // cell) + 1, int(span_y // cell) + 1
        if gx * gy <= 4 * n + 64:
            c0 = np.clip(((xyxy[:, 0] - ox) // cell), 0, gx - 1)
            c1 = np.clip(((xyxy[:, 2] - ox) // cell), 0, gx - 1)
            r0 = np.clip(((xyxy[:, 1] - oy) // cell), 0, gy - 1)
            r1 = np.clip(((xyxy[:, 3] - oy) // cell), 0, gy - 1)
            regs = float(np.sum(np.maximum(c1 - c0 + 1, 0) * np.maximum(r1 - r0 + 1, 0)))
            if regs <= budget:
                break
        cell *= 2.0
    starts, items = _fill(xyxy, ox, oy, cell, gx, gy)
    return Grid(ox, oy, cell, gx, gy, starts, items)


@numba.njit(cache=True, nogil=True)
def cell_range(a0, a1, origin, cell, g):
    """First and last grid index (inclusive) that the interval [a0, a1] touches; empty if a1 < a0."""
    i0 = int((a0 - origin) // cell)
    i1 = int((a1 - origin) // cell)
    i0 = min(max(i0, 0), g - 1)
    i1 = min(max(i1, 0), g - 1)
    if a1 < a0:
        i1 = i0 - 1
    return i0, i1


@numba.njit(cache=True, nogil=True)
def _fill(xyxy, ox, oy, cell, gx, gy):
    n = xyxy.shape[0]
    counts = np.zeros(gx * gy + 1, np.int64)
    for i in range(n):
        c0, c1 = cell_range(xyxy[i, 0], xyxy[i, 2], ox, cell, gx)
        r0, r1 = cell_range(xyxy[i, 1], xyxy[i, 3], oy, cell, gy)
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                counts[r * gx + c + 1] += 1
    starts = np.cumsum(counts)
    cursor = starts[:-1].copy()
    items = np.empty(starts[-1], np.int64)
    for i in range(n):
        c0, c1 = cell_range(xyxy[i, 0], xyxy[i, 2], ox, cell, gx)
        r0, r1 = cell_range(xyxy[i, 1], xyxy[i, 3], oy, cell, gy)
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                k = r * gx + c
                items[cursor[k]] = i
                cursor[k] += 1
    return starts, items


@numba.njit(cache=True, nogil=True)
def gather(grid, box, stamp, token, out):
    """Write into ``out`` every box registered in a cell that ``box`` (x0, y0, x1, y1) touches, once.

    ``stamp[j] == token`` marks boxes already written; returns how many were written.
    """
    c0, c1 = cell_range(box[0], box[2], grid.ox, grid.cell, grid.gx)
    r0, r1 = cell_range(box[1], box[3], grid.oy, grid.cell, grid.gy)
    m = 0
    for r in range(r0, r1 + 1):
        for c in range(c0, c1 + 1):
            k = r * grid.gx + c
            for p in range(grid.starts[k], grid.starts[k + 1]):
                j = grid.items[p]
                if stamp[j] != token:
                    stamp[j] = token
                    out[m] = j
                    m += 1
    return m


@numba.njit(cache=True, nogil=True, inline="always")
def iou_gt(xyxy, areas, i, j, thr):
    """IoU(i, j) > thr, in float32 with the shared order of operations (see _common)."""
    zero = np.float32(0.0)
    w = min(xyxy[i, 2], xyxy[j, 2]) - max(xyxy[i, 0], xyxy[j, 0])
    h = min(xyxy[i, 3], xyxy[j, 3]) - max(xyxy[i, 1], xyxy[j, 1])
    if w <= zero or h <= zero:
        return False
    inter = w * h
    union = (areas[i] + areas[j]) - inter
    return union > zero and inter / union > thr
