"""Inference backends behind one interface, registered by name; heavy libraries load lazily.

    backend = load_backend("model.onnx")               # chosen by suffix: .onnx, .engine, .pt
    boxes, scores = backend.infer(preprocess(tiles))

A backend is one module here plus one line in ``BACKEND_MODULES``; its class declares everything
else (suffixes, devices, precisions, packages, ``unavailable_reason``). Importing a backend module
imports nothing heavy: onnxruntime, tensorrt and torch load when a model is opened.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from bcedge.backends.base import BACKENDS, Backend, BackendUnavailable, preprocess, register_backend

BACKEND_MODULES = (
    "bcedge.backends.onnxruntime",
    "bcedge.backends.tensorrt",
    "bcedge.backends.torch",
)

__all__ = ["Backend", "BackendUnavailable", "load_backend", "preprocess", "register_backend", "BACKENDS",
           "backend_class", "backend_classes", "suffix_backends", "backend_for"]


def backend_classes() -> dict[str, type[Backend]]:
    """Every registered backend by name (imports the backend modules; they import nothing heavy)."""
    for module in BACKEND_MODULES:
        importlib.import_module(module)
    return dict(BACKENDS)


def backend_class(name: str) -> type[Backend]:
    backend_classes()
    return BACKENDS.lookup(name)


def suffix_backends() -> dict[str, str]:
    """File suffix -> backend name, from the classes' ``suffixes``."""
    return {suffix: cls.name for cls in backend_classes().values() for suffix in cls.suffixes}


def backend_for(path: str | Path) -> str:
    """The backend that opens ``path``, by its suffix."""
    path = Path(path)
    table = suffix_backends()
    if path.suffix.lower() not in table:
        raise ValueError(f"{path}: cannot tell the backend from the suffix {path.suffix!r}; "
                         f"expected one of {', '.join(table)} or pass --backend")
    return table[path.suffix.lower()]


def load_backend(path: str | Path, backend: str = "auto", device: str = "auto", **options) -> Backend:
    """Open a finished artifact with the named backend (``auto``: by file suffix); a backend named for a file it
    does not open (``--backend torch`` with an ONNX file) is refused saying which one does."""
    name = backend_for(path) if backend == "auto" else backend
    cls = backend_class(name)
    suffix = Path(path).suffix.lower()
    if cls.suffixes and suffix not in cls.suffixes:
        opener = suffix_backends().get(suffix)
        raise ValueError(f"{path}: the {name} backend opens {', '.join(cls.suffixes)} files"
                         + (f"; {suffix} files are for the {opener} backend (drop --backend)" if opener else ""))
    return cls(Path(path), device=device, **options)
