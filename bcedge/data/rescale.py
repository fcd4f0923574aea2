"""A dataset at another magnification: every image resampled by one factor, its boxes scaled alike.

What a lower- or higher-magnification objective (or another camera pixel) gives of the same smears;
used to measure how counts hold across scales (``benchmarks/magnification.py``, the default model's
half-size check). Area averaging when shrinking, cubic when enlarging.
"""
from __future__ import annotations

from pathlib import Path

import cv2

from bcedge.data.annotations import Dataset, ImageAnnotation

JPEG_QUALITY = 95


def rescaled(data: Dataset, factor: float, folder: str | Path, suffix: str = ".png") -> Dataset:
    """``data`` with every image written to ``folder`` at ``factor`` times its size (``suffix``: .png, or .jpg
    at quality 95) and its boxes scaled to match; labels, sources and groups kept."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if suffix.lower() in (".jpg", ".jpeg") else []
    images = []
    for record in data.images:
        width, height = round(record.width * factor), round(record.height * factor)
        pixels = cv2.resize(cv2.imread(str(record.image_path)), (width, height),
                            interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
        path = folder / f"{record.image_path.stem}{suffix}"
        cv2.imwrite(str(path), pixels, params)
        images.append(ImageAnnotation(path, width, height, record.boxes * factor, record.labels, record.source,
                                      group=record.group))
    return Dataset(images, list(data.class_names), folder, data.format)
