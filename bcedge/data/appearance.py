"""The same smears as another lab's microscope would show them: stain, lamp, focus and camera.

A new microscope changes more than the scale. The stain's hue and strength, the lamp's colour (white
balance) and evenness, the focus and the camera (greyscale, JPEG, noise) differ from lab to lab. ``SHIFTS`` names one
plausible change of each kind; ``appearance_shifted`` rewrites a labelled dataset with one of them, and
``benchmarks/appearance.py`` counts the val splits under each. Only the pixels change, never the boxes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from bcedge.data.annotations import Dataset
from bcedge.data.rescale import rewritten

Pixels = Callable[[np.ndarray], np.ndarray]      # BGR uint8 -> BGR uint8


@dataclass(frozen=True)
class Shift:
    what: str          # the lab difference it stands for
    pixels: Pixels


def _hue(degrees: float) -> Pixels:
    def shift(image: np.ndarray) -> np.ndarray:
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + round(degrees / 2)) % 180).astype(np.uint8)  # OpenCV hue: 0-180
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    return shift


def _saturation(factor: float) -> Pixels:
    def shift(image: np.ndarray) -> np.ndarray:
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.float32)
        hsv[..., 1] = np.clip(hsv[..., 1] * factor, 0, 255)
        return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
    return shift


def _gains(blue: float, green: float, red: float) -> Pixels:
    gains = np.array([blue, green, red], np.float32)
    return lambda image: np.clip(image.astype(np.float32) * gains, 0, 255).astype(np.uint8)


def _gamma(gamma: float) -> Pixels:
    table = np.clip((np.arange(256) / 255.0) ** gamma * 255 + 0.5, 0, 255).astype(np.uint8)
    return lambda image: cv2.LUT(image, table)


def _greyscale(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def vignetted(image: np.ndarray, corner: float) -> np.ndarray:
    """``image`` (uint8, any channel order) darkened towards its corners, as a camera adapter's vignetting
    leaves it: brightness falls with the square of the distance from the centre, to ``corner`` times the
    centre's in the corners."""
    height, width = image.shape[:2]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    radius_sq = (((x + 0.5) / width - 0.5) ** 2 + ((y + 0.5) / height - 0.5) ** 2) * 2   # 1 in the corners
    gain = 1 - (1 - corner) * radius_sq
    return np.clip(image * (gain[..., None] if image.ndim == 3 else gain) + 0.5, 0, 255).astype(np.uint8)


def round_field(image: np.ndarray, diameter: float = 1.0, soft: float = 0.0) -> np.ndarray:
    """``image`` as an eyepiece camera shows it: black outside a circle centred on it, ``diameter`` times the
    image's longer side across, its edge fading to black over ``soft`` px (0: a sharp edge)."""
    height, width = image.shape[:2]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    beyond = np.hypot(x + 0.5 - width / 2, y + 0.5 - height / 2) - diameter * max(width, height) / 2
    gain = np.clip(0.5 - beyond / soft, 0, 1) if soft else (beyond <= 0).astype(np.float32)
    return (image * (gain[..., None] if image.ndim == 3 else gain) + 0.5).astype(np.uint8)


def inside_round_field(boxes: np.ndarray, width: int, height: int, diameter: float = 1.0) -> np.ndarray:
    """Which boxes (xyxy) have their centre inside ``round_field``'s circle: the cells it leaves at least half of."""
    centre_x, centre_y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return np.hypot(centre_x - width / 2, centre_y - height / 2) <= diameter * max(width, height) / 2


def visible_in_round_field(boxes: np.ndarray, width: int, height: int, diameter: float = 1.0,
                           min_share: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """Which boxes (xyxy) show at least ``min_share`` of their area inside ``round_field``'s circle, and each
    box cut to the part inside it: the labels of the image-edge rule (a partial cell counts when at least
    35% of it shows, as training crops keep it), for a round field. Measured on a 24x24 grid of points per box."""
    steps = (np.arange(24, dtype=np.float32) + 0.5) / 24
    xs = boxes[:, 0:1] + (boxes[:, 2:3] - boxes[:, 0:1]) * steps            # (N, 24)
    ys = boxes[:, 1:2] + (boxes[:, 3:4] - boxes[:, 1:2]) * steps
    radius = diameter * max(width, height) / 2
    inside = np.hypot(xs[:, None, :] - width / 2, ys[:, :, None] - height / 2) <= radius   # (N, y, x)
    kept = inside.mean(axis=(1, 2)) >= min_share
    cut = boxes.astype(np.float32).copy()
    half_step = (boxes[:, 2:] - boxes[:, :2]) / 48
    for index in np.flatnonzero(kept):
        rows, columns = np.nonzero(inside[index])
        low = np.array([xs[index, columns.min()], ys[index, rows.min()]]) - half_step[index]
        high = np.array([xs[index, columns.max()], ys[index, rows.max()]]) + half_step[index]
        cut[index, :2], cut[index, 2:] = np.maximum(boxes[index, :2], low), np.minimum(boxes[index, 2:], high)
    return kept, cut


def _jpeg(quality: int) -> Pixels:
    return lambda image: cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1],
                                      cv2.IMREAD_COLOR)


def _noise(sigma: float) -> Pixels:
    def shift(image: np.ndarray) -> np.ndarray:
        grain = np.random.default_rng(0).normal(0, sigma, image.shape)    # the same grain for every run
        return np.clip(image + grain, 0, 255).astype(np.uint8)
    return shift


SHIFTS: dict[str, Shift] = {
    "none": Shift("the images as they are", lambda image: image),
    "hue +30": Shift("a redder stain (hue turned 30 degrees of 360)", _hue(30)),
    "hue -30": Shift("a bluer stain (hue turned -30 degrees of 360)", _hue(-30)),
    "pale stain": Shift("a weak or faded stain (saturation halved)", _saturation(0.5)),
    "warm lamp": Shift("a halogen lamp, no white balance (red x1.15, blue x0.8)", _gains(0.8, 1.0, 1.15)),
    "cool lamp": Shift("a daylight LED, no white balance (red x0.85, blue x1.15)", _gains(1.15, 1.0, 0.85)),
    "dim lamp": Shift("a darker exposure (gamma 1.6)", _gamma(1.6)),
    "bright lamp": Shift("an overexposure (every channel x1.3, clipped: the background turns white)", _gains(1.3, 1.3, 1.3)),
    "vignetting": Shift("a camera adapter's dark corners (half the centre's brightness)",
                        lambda image: vignetted(image, 0.5)),
    "strong vignetting": Shift("darker corners still (30% of the centre's brightness)", lambda image: vignetted(image, 0.3)),
    "defocus": Shift("slightly out of focus (Gaussian blur, sigma 2 px)", lambda image: cv2.GaussianBlur(image, (0, 0), 2.0)),
    "greyscale": Shift("a monochrome camera", _greyscale),
    "jpeg 25": Shift("a camera's strong JPEG compression (quality 25)", _jpeg(25)),
    "sensor noise": Shift("a noisy sensor (Gaussian noise, sigma 10 grey levels)", _noise(10.0)),
    "heavy noise": Shift("a very noisy sensor: high gain, a dim field (Gaussian noise, sigma 20 grey levels)", _noise(20.0)),
}


def appearance_shifted(data: Dataset, shift: str, folder: str | Path) -> Dataset:
    """``data`` with every image as ``SHIFTS[shift]`` shows it, written to ``folder`` as PNG (lossless)."""
    if shift not in SHIFTS:
        raise ValueError(f"unknown appearance shift {shift!r}; known: {', '.join(SHIFTS)}")
    return rewritten(data, folder, SHIFTS[shift].pixels)
