"""Bring an image and its boxes to exactly the model's input size (numpy only).

Shared by training (random crops) and evaluation (top-left padding): both roads need it, so it lives
in neither.
"""
from __future__ import annotations

import numpy as np


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
