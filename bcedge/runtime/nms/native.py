"""The native NMS library (csrc/, built by CMakeLists.txt) through ctypes.

Looked up, first hit wins: ``$BCEDGE_NMS_LIB``, ``libbcedge_nms.so`` next to this file, then
``build/`` at the repository root (``cmake -S . -B build && cmake --build build``). Backends:
``cuda_native`` (the GPU kernel; needs a CUDA build and a device) and ``native_cpu`` (the same
block-sparse algorithm on the CPU, mainly to check the C++ host code where no GPU is present).
"""
from __future__ import annotations

import ctypes
import functools
import os
import sys
from pathlib import Path

import numpy as np

_NAMES = {"linux": "libbcedge_nms.so", "darwin": "libbcedge_nms.dylib", "win32": "bcedge_nms.dll"}
LIB_NAME = _NAMES.get(sys.platform, "libbcedge_nms.so")


def candidate_paths() -> list[Path]:
    here = Path(__file__).resolve().parent
    paths = [Path(os.environ["BCEDGE_NMS_LIB"])] if os.environ.get("BCEDGE_NMS_LIB") else []
    return paths + [here / LIB_NAME, here.parents[2] / "build" / LIB_NAME]


@functools.lru_cache(maxsize=8)
def load(path: str | None = None) -> ctypes.CDLL | None:
    """The loaded library (from ``path`` or the usual places), or None when there is none."""
    paths = [Path(path)] if path else candidate_paths()
    for candidate in paths:
        if candidate.is_file():
            try:
                lib = ctypes.CDLL(str(candidate))
            except OSError as exc:
                raise OSError(f"{candidate}: cannot load the native NMS library: {exc}") from exc
            _declare(lib)
            return lib
    return None


def _declare(lib: ctypes.CDLL) -> None:
    args = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_void_p]
    for name in ("bcedge_nms", "bcedge_nms_cpu"):
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, ctypes.c_int
    lib.bcedge_nms_device_count.argtypes, lib.bcedge_nms_device_count.restype = [], ctypes.c_int
    lib.bcedge_nms_has_cuda.argtypes, lib.bcedge_nms_has_cuda.restype = [], ctypes.c_int
    lib.bcedge_nms_last_error.argtypes, lib.bcedge_nms_last_error.restype = [], ctypes.c_char_p


def call(lib: ctypes.CDLL, function: str, xyxy, scores, class_ids, iou) -> np.ndarray:
    """Run ``bcedge_nms`` or ``bcedge_nms_cpu`` on prepared arrays; errors become RuntimeError."""
    n = len(xyxy)
    keep = np.empty(max(n, 1), np.int64)
    got = getattr(lib, function)(xyxy.ctypes.data, scores.ctypes.data, class_ids.ctypes.data, n,
                                 float(iou), keep.ctypes.data)
    if got < 0:
        raise RuntimeError(lib.bcedge_nms_last_error().decode(errors="replace") or f"{function} failed")
    return keep[:got].copy()


@functools.lru_cache(maxsize=1)
def gpu_available() -> bool:
    lib = load()
    return bool(lib is not None and lib.bcedge_nms_has_cuda() and lib.bcedge_nms_device_count() > 0)


class GpuBackend:
    """``cuda_native``: the CUDA kernel."""

    @staticmethod
    def is_available() -> bool:
        return gpu_available()

    is_gpu = is_available

    @staticmethod
    def nms(xyxy, scores, class_ids, iou) -> np.ndarray:
        return call(load(), "bcedge_nms", xyxy, scores, class_ids, iou)


class CpuBackend:
    """``native_cpu``: the same algorithm compiled for the CPU."""

    @staticmethod
    def is_available() -> bool:
        return load() is not None

    @staticmethod
    def is_gpu() -> bool:
        return False

    @staticmethod
    def nms(xyxy, scores, class_ids, iou) -> np.ndarray:
        return call(load(), "bcedge_nms_cpu", xyxy, scores, class_ids, iou)
