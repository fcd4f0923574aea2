"""Bring an image and its boxes to exactly the model's input size; the filter that resamples a smear.

Shared by training (random crops), calibration and evaluation (top-left padding) and the runtime: both
roads need them, so they live in neither.
"""
from __future__ import annotations

import numpy as np

# Down to half size, bilinear: a smear is smooth at that scale (BCCD frames at 0.6 differ from area
# averaging by 0.25 grey levels on average) and it takes a tenth of the time of OpenCV's area averaging at a
# non-integer factor, which was 15% of counting a BCCD frame. Below half size bilinear would alias.
LINEAR_DOWN_TO = 0.5


def resample_interpolation(factor: float) -> int:
    """The OpenCV filter the runtime resamples by ``factor`` with; INT8 calibration tiles are made alike."""
    import cv2

    return cv2.INTER_AREA if factor < LINEAR_DOWN_TO else cv2.INTER_LINEAR


def fit_to_size(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, size: tuple[int, int],
                rng: np.random.Generator | None, min_visible: float = 0.35, fill: int = 0):
    """Crop (random offset when ``rng`` is given, else top-left) or pad ``image`` to exactly ``size`` (w, h)."""
    width, height = size
    h, w = image.shape[:2]
    x0 = int(rng.integers(0, w - width + 1)) if (rng is not None and w > width) else 0
    y0 = int(rng.integers(0, h - height + 1)) if (rng is not None and h > height) else 0
    crop = image[y0:y0 + height, x0:x0 + width]
    if crop.shape[:2] != (height, width):
        canvas = np.full((height, width, 3), fill, dtype=image.dtype)
        canvas[:crop.shape[0], :crop.shape[1]] = crop
        crop = canvas
    if len(boxes):
        shifted = boxes - np.array([x0, y0, x0, y0], dtype=np.float32)
        limit = np.array([min(width, w - x0), min(height, h - y0)] * 2, dtype=np.float32)
        clipped = np.clip(shifted, 0, limit)
        area = lambda b: np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)  # noqa: E731
        keep = area(clipped) >= min_visible * np.maximum(area(shifted), 1e-6)
        boxes, labels = clipped[keep], labels[keep]
    return crop, boxes, labels
