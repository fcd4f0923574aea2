"""A labelled dataset rewritten image by image: at another magnification, or with other pixels.

What a lower- or higher-magnification objective (or another camera pixel) gives of the same smears;
used to measure how counts hold across scales (``benchmarks/magnification.py``, the default model's
half-size check). Area averaging when shrinking, cubic when enlarging. ``rewritten`` is the general
form (``bcedge.data.appearance`` uses it for stains, lamps and cameras).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from bcedge.data.annotations import Dataset, ImageAnnotation

JPEG_QUALITY = 95


def rewritten(data: Dataset, folder: str | Path, pixels: Callable[[np.ndarray], np.ndarray],
              box_factor: float = 1.0, suffix: str = ".png") -> Dataset:
    """``data`` with every image passed through ``pixels`` (BGR uint8 in and out) and written to ``folder``
    (``suffix``: .png, or .jpg at quality 95); boxes multiplied by ``box_factor``; labels, sources and groups kept."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if suffix.lower() in (".jpg", ".jpeg") else []
    images = []
    for record in data.images:
        image = pixels(cv2.imread(str(record.image_path)))
        path = folder / f"{record.image_path.stem}{suffix}"
        cv2.imwrite(str(path), image, params)
        images.append(ImageAnnotation(path, image.shape[1], image.shape[0], record.boxes * box_factor, record.labels,
                                      record.source, group=record.group))
    return Dataset(images, list(data.class_names), folder, data.format)


def rescaled(data: Dataset, factor: float, folder: str | Path, suffix: str = ".png") -> Dataset:
    """``data`` with every image at ``factor`` times its size and its boxes scaled to match."""
    def resample(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        return cv2.resize(image, (round(width * factor), round(height * factor)),
                          interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)

    return rewritten(data, folder, resample, factor, suffix)
