"""Class-aware NMS behind one call, with backends registered by name.

    keep = nms(xyxy, scores, class_ids, iou_threshold=0.5, backend="auto")

``keep`` holds indices of the kept boxes, highest score first (equal scores: lower index first).
Every backend keeps exactly the same boxes (same float32 IoU, same visiting order; see
``_common``). A backend is a module (or object) with ``nms(xyxy, scores, class_ids, iou)`` and
``is_available()``, optionally ``is_gpu()``; adding one is a new file plus one line below.

``auto`` uses a GPU backend when one is present and there are at least ``GPU_MIN_BOXES`` boxes
(below that the launch and copies cost more than the CPU needs), in the order of
``AUTO_GPU_ORDER``; otherwise ``numba``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from bcedge.registry import Registry, load_target
from bcedge.runtime.nms._common import prepare

# name -> "module" or "module:attribute"; imported only when used.
NMS_BACKENDS: Registry[str] = Registry("NMS backend", hint="or 'auto'")
NMS_BACKENDS.add("numpy", "bcedge.runtime.nms.numpy_nms")
NMS_BACKENDS.add("numba", "bcedge.runtime.nms.numba_nms")
NMS_BACKENDS.add("bitmask", "bcedge.runtime.nms.bitmask")
NMS_BACKENDS.add("cuda", "bcedge.runtime.nms.cuda_nms")
NMS_BACKENDS.add("cuda_native", "bcedge.runtime.nms.native:GpuBackend")
NMS_BACKENDS.add("native_cpu", "bcedge.runtime.nms.native:CpuBackend")
NMS_BACKENDS.add("torchvision", "bcedge.runtime.nms.torchvision_nms")
NMS_BACKENDS.add("torch_grid", "bcedge.runtime.nms.torch_grid")
AUTO_GPU_ORDER = ("cuda_native", "cuda", "torch_grid", "torchvision")
AUTO_CPU = "numba"
GPU_MIN_BOXES = 2048


def register_nms_backend(name: str, target: str) -> None:
    """Add an NMS kernel: ``target`` is ``"package.module"`` or ``"package.module:attribute"``."""
    NMS_BACKENDS.add(name, target)


def backend_names() -> list[str]:
    return NMS_BACKENDS.names()


def get_backend(name: str) -> Any:
    return load_target(NMS_BACKENDS.lookup(name))


def is_available(name: str) -> bool:
    try:
        return bool(get_backend(name).is_available())
    except (ImportError, OSError):
        return False


def available_backends() -> list[str]:
    return [name for name in NMS_BACKENDS if is_available(name)]


def pick_backend(n_boxes: int) -> str:
    """What ``auto`` resolves to for ``n_boxes`` boxes."""
    if n_boxes >= GPU_MIN_BOXES:
        for name in AUTO_GPU_ORDER:
            try:
                backend = get_backend(name)
                if backend.is_available() and getattr(backend, "is_gpu", lambda: False)():
                    return name
            except (ImportError, OSError):
                continue
    return AUTO_CPU


def nms(xyxy, scores, class_ids, iou_threshold: float = 0.5, backend: str = "auto") -> np.ndarray:
    """Class-aware greedy NMS; returns int64 indices of kept boxes, highest score first."""
    xyxy, scores, class_ids, thr = prepare(xyxy, scores, class_ids, iou_threshold)
    if len(xyxy) == 0:
        return np.zeros(0, np.int64)
    name = pick_backend(len(xyxy)) if backend == "auto" else backend
    impl = get_backend(name)
    if not impl.is_available():
        raise RuntimeError(f"NMS backend {name!r} is not available here (available: {', '.join(available_backends())})")
    return np.asarray(impl.nms(xyxy, scores, class_ids, thr), dtype=np.int64)


__all__ = ["nms", "register_nms_backend", "NMS_BACKENDS", "backend_names", "available_backends", "pick_backend", "get_backend"]
