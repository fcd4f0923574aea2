"""The in-memory annotation types every dataset reader produces and every consumer takes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np


@dataclass
class ImageAnnotation:
    """One image and its boxes, in pixels of the image as stored on disk.

    ``boxes`` is (N, 4) float32 ``xyxy``; ``labels`` holds N class names. ``masks`` is reserved for
    instance masks (one entry per box, e.g. COCO RLE or polygons) and is ``None`` when absent.
    ``source`` names the annotation file (and entry) the record came from, for error messages.
    """

    image_path: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: list[str]
    source: str = ""
    masks: list | None = None
    group: str = ""              # source group (dataset, microscope) for balanced sampling and per-source figures

    def __post_init__(self) -> None:
        self.image_path = Path(self.image_path)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.labels = list(self.labels)
        if len(self.labels) != len(self.boxes):
            raise ValueError(f"{self.source or self.image_path}: {len(self.boxes)} boxes but {len(self.labels)} labels")

    @property
    def name(self) -> str:
        return self.image_path.name


@dataclass
class Dataset:
    """A list of annotated images with the class names they use, in a stable order."""

    images: list[ImageAnnotation]
    class_names: list[str]
    root: Path | None = None
    format: str = ""
    notes: list[str] = field(default_factory=list)  # facts a reader decided (e.g. "CSV boxes are normalised")

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[ImageAnnotation]:
        return iter(self.images)

    def class_index(self, label: str) -> int:
        return self.class_names.index(label)

    def subset(self, indices) -> "Dataset":
        return Dataset([self.images[i] for i in indices], list(self.class_names), self.root, self.format, list(self.notes))
