"""Augmentations that suit blood smears, on numpy images and pixel boxes (no torch).

Smears have no "up": flips and 90-degree turns are free. Stain and illumination vary between labs, so
colour jitter works in HSV plus per-channel gain. Scale jitter resizes and then crops or pads back to
the model's input size, because the model must always see exactly the size its artifact declares.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bcedge.imageops import fit_to_size


@dataclass
class AugmentConfig:
    flip: float = 0.5            # probability of each of horizontal and vertical flip
    rot90: float = 0.25          # probability of a quarter turn
    scale: tuple[float, float] = (0.8, 1.25)
    hue: float = 6.0             # degrees of hue shift (OpenCV hue runs 0..180)
    saturation: float = 0.25     # relative
    brightness: float = 0.2      # relative
    contrast: float = 0.2        # relative
    channel_gain: float = 0.06   # per-channel stain imbalance and white balance
    blur: float = 0.0            # probability of a defocus blur (Gaussian, sigma 0.5-1.5 model px)
    greyscale: float = 0.0       # probability of a greyscale image (monochrome cameras, faded stains)
    min_visible: float = 0.35    # keep a cropped box when this fraction of its area is still inside
    target_cell_px: float | None = None  # bring each image's median red cell to this size first (multi-scale data)


def _flip(image, boxes, horizontal: bool):
    h, w = image.shape[:2]
    if horizontal:
        return image[:, ::-1], np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
    return image[::-1], np.stack([boxes[:, 0], h - boxes[:, 3], boxes[:, 2], h - boxes[:, 1]], 1)


def _rot90(image, boxes):
    """Counter-clockwise quarter turn: (x, y) -> (y, w - x)."""
    w = image.shape[1]
    return np.rot90(image), np.stack([boxes[:, 1], w - boxes[:, 2], boxes[:, 3], w - boxes[:, 0]], 1)


def jitter_colour(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Stain (hue, saturation), lamp (per-channel gain, brightness, contrast) and camera (greyscale) jitter."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-cfg.hue, cfg.hue)) % 180
    hsv[..., 1] *= 1 + rng.uniform(-cfg.saturation, cfg.saturation)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    gain = 1 + rng.uniform(-cfg.channel_gain, cfg.channel_gain, size=3)
    mean = out.mean()
    out = (out - mean) * (1 + rng.uniform(-cfg.contrast, cfg.contrast)) + mean
    out = out * gain * (1 + rng.uniform(-cfg.brightness, cfg.brightness))
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < cfg.greyscale:
        out = np.repeat(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    return out


def augment(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, size: tuple[int, int],
            cfg: AugmentConfig, rng: np.random.Generator, base_scale: float = 1.0):
    """One random augmentation of an RGB uint8 image and its (N, 4) xyxy boxes, ending at ``size``.

    ``base_scale`` (the image's own cell size against ``cfg.target_cell_px``) multiplies the jitter, so
    images from microscopes of different magnifications all reach the model at its working scale."""
    boxes = boxes.astype(np.float32).reshape(-1, 4)
    if rng.random() < cfg.flip:
        image, boxes = _flip(image, boxes, horizontal=True)
    if rng.random() < cfg.flip:
        image, boxes = _flip(image, boxes, horizontal=False)
    if rng.random() < cfg.rot90:
        image, boxes = _rot90(image, boxes)
    scale = base_scale * float(np.exp(rng.uniform(*np.log(cfg.scale))))
    if abs(scale - 1) > 1e-3:
        h, w = image.shape[:2]
        image = cv2.resize(np.ascontiguousarray(image), (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        boxes = boxes * scale
    image = jitter_colour(np.ascontiguousarray(image), cfg, rng)
    if rng.random() < cfg.blur:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5))
    fill = int(np.median(image[::8, ::8]))  # pad with background-ish grey, not black
    return fit_to_size(image, boxes, labels, size, rng, cfg.min_visible, fill)
