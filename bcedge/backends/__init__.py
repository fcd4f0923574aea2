"""Inference backends behind one interface, registered by name; heavy libraries load lazily.

    backend = load_backend("model.onnx")               # chosen by suffix: .onnx, .engine, .pt
    boxes, scores = backend.infer(preprocess(tiles))
"""
from __future__ import annotations

import importlib
from pathlib import Path

from bcedge.backends.base import BACKENDS, SUFFIX_BACKEND, Backend, BackendUnavailable, preprocess, register_backend

_MODULES = {"onnxruntime": "bcedge.backends.onnxruntime", "tensorrt": "bcedge.backends.tensorrt",
            "torch": "bcedge.backends.torch"}

__all__ = ["Backend", "BackendUnavailable", "load_backend", "preprocess", "register_backend", "BACKENDS"]


def backend_class(name: str) -> type[Backend]:
    if name not in _MODULES and name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(sorted(_MODULES))}")
    if name not in BACKENDS:
        importlib.import_module(_MODULES[name])
    return BACKENDS[name]


def load_backend(path: str | Path, backend: str = "auto", device: str = "auto", **options) -> Backend:
    """Open a finished artifact with the named backend (``auto``: by file suffix)."""
    path = Path(path)
    if backend == "auto":
        if path.suffix.lower() not in SUFFIX_BACKEND:
            raise ValueError(f"{path}: cannot tell the backend from the suffix {path.suffix!r}; "
                             f"expected one of {', '.join(SUFFIX_BACKEND)} or pass --backend")
        backend = SUFFIX_BACKEND[path.suffix.lower()]
    return backend_class(backend)(path, device=device, **options)
