"""GPU NMS with a numba.cuda kernel: block-sparse bitmask masks on the device, sweep on the host.

The plan (spatial order, block pairs) and the sweep come from ``bitmask``; only the mask
computation runs on the GPU, one 64-thread block per (row block, column block) pair. Tested
without a GPU under ``NUMBA_ENABLE_CUDASIM=1``. ``w * h`` goes through ``fmul_rn`` on the device so
the compiler cannot fuse it into the subtraction (FMA): results stay bit-identical to the CPU.
"""
from __future__ import annotations

import functools

import numpy as np

if not hasattr(np, "row_stack"):   # numpy 2.5 removed this alias of vstack, and the numba-cuda on the GPU
    np.row_stack = np.vstack       # machine's image still called it: every launch there failed with AttributeError

from numba import config, cuda, float32, int64, uint64  # noqa: E402
from numba.cuda import libdevice  # noqa: E402

from bcedge.runtime.nms import bitmask  # noqa: E402

_SIMULATED = bool(config.ENABLE_CUDASIM)  # the simulator has no libdevice; its numpy floats do not fuse


@functools.lru_cache(maxsize=1)
def is_available() -> bool:
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install must not break the CPU path
        return False


def is_gpu() -> bool:
    """A real device (not the simulator), worth picking automatically."""
    return not _SIMULATED and is_available()


def nms(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: np.float32) -> np.ndarray:
    p = bitmask.plan(xyxy, scores, class_ids)
    n_pairs = len(p.pair_row)
    if n_pairs == 0:
        return bitmask.sweep(p, np.zeros(0, np.uint64))
    stream = cuda.stream()
    d_boxes = cuda.to_device(p.boxes, stream=stream)
    d_areas = cuda.to_device(p.areas, stream=stream)
    d_cls = cuda.to_device(p.classes, stream=stream)
    d_rank = cuda.to_device(p.rank, stream=stream)
    d_row = cuda.to_device(p.pair_row, stream=stream)
    d_col = cuda.to_device(p.pair_col, stream=stream)
    d_mask = cuda.device_array(n_pairs * bitmask.BLOCK, dtype=np.uint64, stream=stream)
    _mask_kernel[n_pairs, bitmask.BLOCK, stream](d_boxes, d_areas, d_cls, d_rank, d_row, d_col, np.float32(iou), d_mask)
    mask = d_mask.copy_to_host(stream=stream)
    stream.synchronize()
    return bitmask.sweep(p, mask)


@cuda.jit
def _mask_kernel(boxes, areas, classes, rank, pair_row, pair_col, thr, mask):
    """Block b = pair (row block r, column block c); lane t = box r*64+t; bit k = it suppresses box c*64+k."""
    b = cuda.blockIdx.x
    t = cuda.threadIdx.x
    n = boxes.shape[0]
    r0 = pair_row[b] * 64
    c0 = pair_col[b] * 64
    col_box = cuda.shared.array((64, 4), dtype=float32)
    col_area = cuda.shared.array(64, dtype=float32)
    col_cls = cuda.shared.array(64, dtype=int64)
    col_rank = cuda.shared.array(64, dtype=int64)
    if c0 + t < n:
        for q in range(4):
            col_box[t, q] = boxes[c0 + t, q]
        col_area[t] = areas[c0 + t]
        col_cls[t] = classes[c0 + t]
        col_rank[t] = rank[c0 + t]
    cuda.syncthreads()
    i = r0 + t
    if i >= n:
        return
    zero = float32(0.0)
    x0, y0, x1, y1 = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
    area_i, cls_i, rank_i = areas[i], classes[i], rank[i]
    bits = uint64(0)
    for k in range(64 if n - c0 > 64 else n - c0):
        if rank_i >= col_rank[k] or cls_i != col_cls[k]:
            continue
        # explicit comparisons: builtin min/max on floats would need a device context to compile
        w = (x1 if x1 < col_box[k, 2] else col_box[k, 2]) - (x0 if x0 > col_box[k, 0] else col_box[k, 0])
        h = (y1 if y1 < col_box[k, 3] else col_box[k, 3]) - (y0 if y0 > col_box[k, 1] else col_box[k, 1])
        if w <= zero or h <= zero:
            continue
        if _SIMULATED:
            inter = w * h
        else:
            inter = libdevice.fmul_rn(w, h)
        union = (area_i + col_area[k]) - inter
        if union > zero and inter / union > thr:
            bits |= uint64(1) << uint64(k)
    mask[b * 64 + t] = bits
