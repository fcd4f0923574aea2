"""Block-sparse bitmask NMS: the GPU algorithm, with its host side and a CPU reference of the kernel.

The classic GPU NMS (as in torchvision and Detectron) sorts boxes by score, splits them into blocks
of 64 and has one thread block compute, for each box of a row block, a uint64 mask of the boxes of
a column block it suppresses; a sweep in score order then ORs the masks of kept boxes. Dense, that
is n^2 / 8 bytes (1.25 GB for 100k boxes). Here boxes are first ordered by class and position
(Morton code of the centre), so each 64-box block covers a small patch of one class, and only the
block pairs whose bounding rectangles intersect and whose classes meet get a mask. Score order
lives in ``rank``; a box suppresses another only if it ranks before it. The sweep visits boxes by
rank. Keep sets equal the plain greedy NMS exactly (pruned pairs cannot overlap).

``plan`` and ``sweep`` are shared by every bitmask backend (CPU reference here, numba CUDA in
``cuda_nms``); ``nms`` is the CPU reference backend named "bitmask".
"""
from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from bcedge.runtime.nms._common import areas32, score_order

BLOCK = 64


class Plan(NamedTuple):
    n: int
    perm: np.ndarray  # spatial position -> original index
    boxes: np.ndarray  # (n, 4) float32, spatial order
    areas: np.ndarray  # (n,) float32, spatial order
    classes: np.ndarray  # (n,) int64, spatial order
    rank: np.ndarray  # (n,) int64 score rank of each spatial position
    by_rank: np.ndarray  # (n,) int64 spatial position of each rank
    pair_start: np.ndarray  # (n_blocks + 1,) CSR offsets of each row block's pairs
    pair_row: np.ndarray  # (n_pairs,) int32 row block of each pair
    pair_col: np.ndarray  # (n_pairs,) int32 column block of each pair


def is_available() -> bool:
    return True


def plan(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray) -> Plan:
    """Order boxes spatially and list the 64x64 block pairs that may hold a suppression."""
    n = len(xyxy)
    rank = np.empty(n, np.int64)
    rank[score_order(scores)] = np.arange(n, dtype=np.int64)
    _, dense_cls = np.unique(class_ids, return_inverse=True)
    key = (dense_cls.astype(np.uint64) << np.uint64(32)) | _morton(xyxy)
    perm = np.argsort(key, kind="stable").astype(np.int64)
    boxes = np.ascontiguousarray(xyxy[perm])
    classes = np.ascontiguousarray(class_ids[perm])
    rank_sp = np.ascontiguousarray(rank[perm])
    by_rank = np.empty(n, np.int64)
    by_rank[rank_sp] = np.arange(n, dtype=np.int64)
    starts = np.arange(0, n, BLOCK)
    if n:
        rects = np.stack([np.minimum.reduceat(boxes[:, 0], starts), np.minimum.reduceat(boxes[:, 1], starts),
                          np.maximum.reduceat(boxes[:, 2], starts), np.maximum.reduceat(boxes[:, 3], starts)], 1)
        dense_sp = dense_cls.reshape(-1)[perm]
        cls_lo, cls_hi = dense_sp[starts], dense_sp[np.minimum(starts + BLOCK, n) - 1]
    else:
        rects, cls_lo, cls_hi = np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    pair_start, pair_row, pair_col = _block_pairs(np.ascontiguousarray(rects), cls_lo.astype(np.int64), cls_hi.astype(np.int64))
    return Plan(n, perm, boxes, areas32(boxes), classes, rank_sp, by_rank, pair_start, pair_row, pair_col)


def nms(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: np.float32) -> np.ndarray:
    """CPU reference of the GPU algorithm: same plan, same per-pair masks, same sweep."""
    p = plan(xyxy, scores, class_ids)
    mask = _masks_cpu(p.boxes, p.areas, p.classes, p.rank, p.pair_row, p.pair_col, np.float32(iou))
    return sweep(p, mask)


def sweep(p: Plan, mask: np.ndarray) -> np.ndarray:
    """Visit boxes by rank; keep those no kept box suppressed. Returns original indices by score."""
    return _sweep(p.n, p.perm, p.by_rank, p.pair_start, p.pair_col, mask)


def _morton(xyxy: np.ndarray) -> np.ndarray:
    """Z-order code (32 bits) of box centres quantised to 16 bits per axis."""
    if len(xyxy) == 0:
        return np.zeros(0, np.uint64)
    centres = np.stack([(xyxy[:, 0] + xyxy[:, 2]) * 0.5, (xyxy[:, 1] + xyxy[:, 3]) * 0.5], 1).astype(np.float64)
    lo, hi = centres.min(0), centres.max(0)
    q = ((centres - lo) / np.maximum(hi - lo, 1e-9) * 65535.0).astype(np.uint64)
    return _spread(q[:, 0]) | (_spread(q[:, 1]) << np.uint64(1))


def _spread(v: np.ndarray) -> np.ndarray:
    """Insert a zero bit between the 16 low bits of v."""
    v = v & np.uint64(0xFFFF)
    for shift, mask in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v


@numba.njit(cache=True, nogil=True)
def _block_pairs(rects, cls_lo, cls_hi):
    nb = rects.shape[0]
    counts = np.zeros(nb + 1, np.int64)
    for r in range(nb):
        for c in range(nb):
            if (cls_lo[c] <= cls_hi[r] and cls_lo[r] <= cls_hi[c]
                    and rects[c, 0] < rects[r, 2] and rects[r, 0] < rects[c, 2]
                    and rects[c, 1] < rects[r, 3] and rects[r, 1] < rects[c, 3]):
                counts[r + 1] += 1
    pair_start = np.cumsum(counts)
    pair_row = np.empty(pair_start[-1], np.int32)
    pair_col = np.empty(pair_start[-1], np.int32)
    k = 0
    for r in range(nb):
        for c in range(nb):
            if (cls_lo[c] <= cls_hi[r] and cls_lo[r] <= cls_hi[c]
                    and rects[c, 0] < rects[r, 2] and rects[r, 0] < rects[c, 2]
                    and rects[c, 1] < rects[r, 3] and rects[r, 1] < rects[c, 3]):
                pair_row[k] = r
                pair_col[k] = c
                k += 1
    return pair_start, pair_row, pair_col


@numba.njit(cache=True, nogil=True)
def _masks_cpu(boxes, areas, classes, rank, pair_row, pair_col, thr):
    """What the kernel computes: for pair b and lane t, bit k = box (row*64+t) suppresses (col*64+k)."""
    n = boxes.shape[0]
    n_pairs = pair_row.shape[0]
    mask = np.zeros(n_pairs * 64, np.uint64)
    zero = np.float32(0.0)
    one = np.uint64(1)
    for b in range(n_pairs):
        r0 = pair_row[b] * 64
        c0 = pair_col[b] * 64
        for t in range(min(64, n - r0)):
            i = r0 + t
            bits = np.uint64(0)
            for k in range(min(64, n - c0)):
                j = c0 + k
                if rank[i] >= rank[j] or classes[i] != classes[j]:
                    continue
                w = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
                h = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
                if w <= zero or h <= zero:
                    continue
                inter = w * h
                union = (areas[i] + areas[j]) - inter
                if union > zero and inter / union > thr:
                    bits |= one << np.uint64(k)
            mask[b * 64 + t] = bits
    return mask


@numba.njit(cache=True, nogil=True)
def _sweep(n, perm, by_rank, pair_start, pair_col, mask):
    removed = np.zeros((n + 63) // 64, np.uint64)
    keep = np.empty(n, np.int64)
    nk = 0
    one = np.uint64(1)
    for q in range(n):
        s = by_rank[q]
        blk = s >> 6
        lane = s & 63
        if (removed[blk] >> np.uint64(lane)) & one:
            continue
        keep[nk] = perm[s]
        nk += 1
        for b in range(pair_start[blk], pair_start[blk + 1]):
            removed[pair_col[b]] |= mask[b * 64 + lane]
    return keep[:nk].copy()
