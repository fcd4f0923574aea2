"""One small interface for every inference backend: load a finished artifact, run batches of tiles.

Backends never build anything (that is ``bcedge.convert``). They take a batch of preprocessed tiles,
float32 (B, 3, H, W) RGB in 0..1 (see ``preprocess``), and return the deploy graph's raw outputs:
boxes (B, A, 4) xyxy in tile pixels and scores (B, A, C). Decoding and NMS happen in the runtime.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable

import numpy as np

from bcedge.artifact import ArtifactError, ModelMeta

BACKENDS: dict[str, type["Backend"]] = {}
SUFFIX_BACKEND = {".onnx": "onnxruntime", ".engine": "tensorrt", ".plan": "tensorrt", ".pt": "torch", ".pth": "torch"}


class BackendUnavailable(RuntimeError):
    """The backend's library (onnxruntime, tensorrt, torch) or device is not present here."""


def register_backend(name: str) -> Callable:
    def add(cls):
        cls.name = name
        BACKENDS[name] = cls
        return cls

    return add


def preprocess(tiles: np.ndarray) -> np.ndarray:
    """uint8 (B, H, W, 3) RGB -> float32 (B, 3, H, W) in 0..1; normalisation is inside the graph."""
    return np.ascontiguousarray(tiles.transpose(0, 3, 1, 2), dtype=np.float32) * np.float32(1 / 255)


class Backend(ABC):
    """Subclasses fill in ``_load`` and ``_infer``; the base checks inputs and keeps timings."""

    name = "base"

    def __init__(self, path: str | Path, device: str = "cpu", **options) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ArtifactError(f"{self.path}: no such model file")
        self.device = device
        self.options = options
        self.meta: ModelMeta = self._load()
        self.precision = self.meta.precision
        self.inference_seconds: list[float] = []

    @abstractmethod
    def _load(self) -> ModelMeta:
        """Open the artifact, return its metadata."""

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ...

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float32 (B, 3, H, W) in 0..1 -> boxes (B, A, 4), scores (B, A, C) as numpy."""
        width, height = self.meta.input_size
        if batch.ndim != 4 or batch.shape[1:] != (3, height, width):
            raise ValueError(f"{self.path.name}: expected a batch (B, 3, {height}, {width}), got {tuple(batch.shape)}")
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
        return f"{self.name} on {self.device} ({self.precision})"

    def close(self) -> None:
        pass

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
