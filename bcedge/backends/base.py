"""One small interface for every inference backend: load a finished artifact, run batches of tiles.

Backends never build anything (that is ``bcedge.convert``). They take a batch of preprocessed tiles,
float32 (B, 3, H, W) RGB in 0..1 (see ``preprocess``), and return the deploy graph's raw outputs:
boxes (B, A, 4) xyxy in tile pixels and scores (B, A, C). Decoding and NMS happen in the runtime.

Each backend class is also the one place its facts live (the spec the loader, the bench, eval and
the CLI ask): the file ``suffixes`` it opens, the ``devices`` and ``precisions`` it runs, the
``packages`` it needs, and ``unavailable_reason(device)``, which says why it cannot run here
without loading anything heavy.
"""
from __future__ import annotations

import importlib.util
import shutil
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bcedge.artifact import ArtifactError, ModelMeta
from bcedge.registry import Registry

BACKENDS: Registry[type["Backend"]] = Registry("backend")


class BackendUnavailable(RuntimeError):
    """The backend's library (onnxruntime, tensorrt, torch) or device is not present here."""


def register_backend(name: str) -> Callable:
    def add(cls):
        cls.name = name
        return BACKENDS.add(name, cls)

    return add


@dataclass(frozen=True)
class Package:
    """A module a backend imports, and how a user gets it."""

    module: str
    install: str


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def missing_package(packages: tuple[Package, ...]) -> str | None:
    for package in packages:
        if not has_module(package.module):
            return f"{package.module} is not installed ({package.install})"
    return None


def gpu_reason() -> str | None:
    """Why this machine has no NVIDIA GPU to run on (no driver tool, no Jetson GPU device), or None."""
    if shutil.which("nvidia-smi") is None and not Path("/dev/nvhost-gpu").exists() and not Path("/dev/nvgpu").exists():
        return "no NVIDIA GPU on this machine (no nvidia-smi, no Jetson GPU device): install the NVIDIA driver or use --device cpu"
    return None


def device_head(device: str) -> str:
    """``cuda:1`` -> ``cuda``."""
    return str(device).partition(":")[0]


def preprocess(tiles: np.ndarray) -> np.ndarray:
    """uint8 (B, H, W, 3) RGB -> float32 (B, 3, H, W) in 0..1; normalisation is inside the graph."""
    return np.ascontiguousarray(tiles.transpose(0, 3, 1, 2), dtype=np.float32) * np.float32(1 / 255)


class Backend(ABC):
    """Subclasses fill in ``_load`` and ``_infer`` and declare their spec; the base checks inputs and keeps timings."""

    name = "base"
    suffixes: tuple[str, ...] = ()          # artifact files this backend opens (lower case, with the dot)
    devices: tuple[str, ...] = ("cpu",)     # device kinds; "auto" picks among them, "cuda:N" counts as "cuda"
    precisions: tuple[str, ...] = ("fp32",)
    packages: tuple[Package, ...] = ()      # what it imports, and how to install it
    artifact = "onnx"                       # the bench's artifact kind prefix (see ``artifact_kind``)

    def __init__(self, path: str | Path, device: str = "cpu", **options) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ArtifactError(f"{self.path}: no such model file")
        self.device = device
        self.options = options
        self.choice = ""                     # how ``auto`` was resolved, shown by ``describe``
        self.meta: ModelMeta = self._load()
        self.precision = getattr(self, "precision", None) or self.meta.precision
        self.inference_seconds: list[float] = []

    # -- the spec --------------------------------------------------------------------------------------
    @classmethod
    def unavailable_reason(cls, device: str) -> str | None:
        """Why this backend cannot run on ``device`` on this machine (a missing package or GPU), or None.

        Cheap: looks for packages without importing the heavy ones. Subclasses add their own checks.
        """
        if device != "auto" and device_head(device) not in cls.devices:
            return f"the {cls.name} backend has no device {device!r} (it runs on {', '.join(cls.devices)})"
        return missing_package(cls.packages)

    @classmethod
    def artifact_kind(cls, precision: str, device: str) -> str | None:
        """The artifact this backend runs for ``precision`` on ``device`` ("onnx:fp16", "engine:int8"), or None."""
        return f"{cls.artifact}:{precision}" if precision in cls.precisions else None

    @classmethod
    def precision_reason(cls, precision: str, device: str) -> str:
        """Why ``artifact_kind`` is None for this precision."""
        return f"the {cls.name} backend runs {', '.join(cls.precisions)} only, not {precision}"

    # -- running ---------------------------------------------------------------------------------------
    @abstractmethod
    def _load(self) -> ModelMeta:
        """Open the artifact, return its metadata."""

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ...

    def check_batch(self, batch: np.ndarray) -> None:
        """(B, 3, H, W) with H, W the model input, or any multiple of the stride for a dynamic-input model."""
        width, height = self.meta.input_size
        if self.meta.dynamic_input:
            stride = max(int(self.meta.stride), 1)
            if batch.ndim != 4 or batch.shape[1] != 3 or batch.shape[2] % stride or batch.shape[3] % stride:
                raise ValueError(f"{self.path.name}: expected a batch (B, 3, H, W) with H and W multiples of {stride}, "
                                 f"got {tuple(batch.shape)}")
            return
        if batch.ndim != 4 or batch.shape[1:] != (3, height, width):
            raise ValueError(f"{self.path.name}: expected a batch (B, 3, {height}, {width}), got {tuple(batch.shape)}")

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float32 (B, 3, H, W) in 0..1 -> boxes (B, A, 4), scores (B, A, C) as numpy."""
        self.check_batch(batch)
        started = time.perf_counter()
        boxes, scores = self._infer(np.ascontiguousarray(batch, dtype=np.float32))
        self.inference_seconds.append(time.perf_counter() - started)
        return boxes, scores

    def warmup(self, iterations: int = 2, batch_size: int = 1) -> None:
        width, height = self.meta.input_size
        dummy = np.full((batch_size, 3, height, width), 0.5, dtype=np.float32)
        for _ in range(iterations):
            self._infer(dummy)

    def describe(self) -> str:
        """What runs: backend, device (or provider) and precision; for ``auto``, what it chose and why."""
        return f"{self.name} on {self.device} ({self.precision}){self._choice_note()}"

    def _choice_note(self) -> str:
        return f"; auto: {self.choice}" if self.choice else ""

    def close(self) -> None:
        pass

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
