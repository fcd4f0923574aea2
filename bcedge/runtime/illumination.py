"""Uneven illumination (a camera adapter's dark corners, a lamp off-centre), evened before counting.

A cheap camera adapter or a misaligned lamp leaves a field brighter in the middle than at the edges;
the model was trained on evenly lit fields. With the corners at half the centre's brightness, TXL-PBC
val mAP50 went from 0.955 to 0.949 and the red-cell count error from 4.5% to 6.7%; at 30%, 0.928 and
9.1%. Evened as below: 0.955 and 5.0%, 0.950 and 5.6% (``benchmarks/appearance.py``, "vignetting",
"strong vignetting").

The lamp is measured on the image itself. The background of a smear is its brightest part, and cells
only darken it, so the lamp's brightness over a block of the image is a high percentile of that block's
grey levels (the mean of R, G and B). A smooth surface (the log of brightness, quadratic in x and y) is fitted
to the blocks' levels and refitted without the blocks far below it: a white cell filling a block darkens it, not
the lamp. Blocks with no specimen (an eyepiece's black surround) are left out. Where the fitted lamp varies by more
than ``UNEVEN_RATIO`` over the image, every pixel is divided by it (brightened to the brightest part's
level, by at most ``MAX_GAIN``) band by band as the image is read, and the result is flagged
``uneven light``. An evenly lit image is counted as it is. The val splits' images measure 1.0-1.29
(white cells and clumps still tilt the fit a little; BCCD's own lamp about 1.13), and of TXL-PBC's 977
train images only one, visibly lit from one side, measures over 1.4 (1.42); with corners at half the
centre's brightness, TXL-PBC and BCCD images measure 1.27-2.05 (over 1.4 on 99.5% of them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from bcedge.runtime.frames import UNEVEN_LIGHT
from bcedge.runtime.sources import ImageSource

BLOCKS = 12                   # blocks along the image's longer side
LEVEL_PERCENTILE = 98         # a block's lamp level: this percentile of its grey levels
SAMPLE_SIDE = 192             # the grey levels are sampled on a grid of at least this many points along the longer side
MIN_LEVEL = 40                # grey level: a darker block shows no specimen (outside the field stop)
BELOW_FIT = 0.05              # log units: a block this far below the fit holds cells, not background
REFITS = 4                    # times the fit is redone without such blocks
UNEVEN_RATIO = 1.4            # brightest / darkest of the fitted lamp over the specimen, above which it is evened
MAX_GAIN = 3.0                # at most this brightening anywhere (a fit extrapolated into a corner)
MAX_MEASURED_PIXELS = 64_000_000   # larger images (slide scans, flat-fielded by their scanner) are not measured
READ_ROWS = 1024              # rows read at a time while sampling
_MEAN_OF_CHANNELS = np.full((1, 3), 1 / 3, np.float32)


def _terms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The quadratic surface's terms at coordinates centred on the image and scaled to -0.5..0.5."""
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1)


def _surface(coefficients: tuple[float, ...], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``_terms(x, y) @ coefficients``, with x and y broadcast against each other (a row of x, a column of y)."""
    c0, cx, cy, cxx, cxy, cyy = coefficients
    return (c0 + cy * y + cyy * y * y) + (cx + cxy * y) * x + cxx * x * x


@dataclass(frozen=True)
class Lamp:
    """The fitted lamp: log brightness = ``coefficients`` . (1, x, y, x², xy, y²) in centred coordinates."""

    coefficients: tuple[float, ...]
    ratio: float          # brightest / darkest of the fit over the blocks that show specimen
    peak: float           # the fit's largest log brightness over the image: where the gain is 1

    def gain(self, width: int, height: int, y0: int, y1: int) -> np.ndarray:
        """(y1 - y0, width) float32: what rows ``y0:y1`` of a ``width x height`` image are multiplied by."""
        x = (np.arange(width, dtype=np.float32) + 0.5) / width - 0.5
        y = ((np.arange(y0, y1, dtype=np.float32) + 0.5) / height - 0.5)[:, None]
        return np.minimum(np.exp(self.peak - _surface(self.coefficients, x, y)), np.float32(MAX_GAIN))


def sampled_grey(src: ImageSource) -> np.ndarray:
    """``src``'s grey levels (uint8, the mean of R, G and B) on a grid of at least ``SAMPLE_SIDE`` points along its
    longer side, read by bands. The mean, not the luminance: a white cell's purple, dark in green, then weighs less
    against the background."""
    step = max(1, max(src.width, src.height) // SAMPLE_SIDE)
    band = READ_ROWS - READ_ROWS % step
    grey = []
    for y0 in range(0, src.height, band):
        rows = src.read_rows(y0, min(src.height, y0 + band))
        size = (max(1, src.width // step), max(1, len(rows) // step))   # every step-th pixel: a nearest-pixel resize
        grey.append(cv2.transform(cv2.resize(rows, size, interpolation=cv2.INTER_NEAREST), _MEAN_OF_CHANNELS))
    return np.concatenate(grey)


def block_levels(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each block's lamp level and its centre (x, y, centred coordinates), flattened."""
    height, width = grey.shape
    rows = max(1, round(BLOCKS * height / max(height, width)))
    cols = max(1, round(BLOCKS * width / max(height, width)))
    block_h, block_w = max(1, height // rows), max(1, width // cols)
    rows, cols = min(rows, height // block_h), min(cols, width // block_w)
    blocks = grey[:rows * block_h, :cols * block_w].reshape(rows, block_h, cols, block_w)
    samples = blocks.transpose(0, 2, 1, 3).reshape(rows * cols, block_h * block_w)
    rank = int(LEVEL_PERCENTILE / 100 * (samples.shape[1] - 1))
    levels = np.partition(samples, rank, axis=1)[:, rank].astype(np.float64)
    y, x = np.mgrid[0:rows, 0:cols]
    return levels, ((x + 0.5) * block_w / width - 0.5).ravel(), ((y + 0.5) * block_h / height - 0.5).ravel()


def _least_squares(terms: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least squares through the 6 x 6 normal equations (well conditioned on centred coordinates)."""
    return np.linalg.solve(terms.T @ terms, terms.T @ values)


def fitted_lamp(grey: np.ndarray) -> Lamp | None:
    """The lamp fitted to a grey image's block levels, or None where too few blocks show specimen."""
    levels, x, y = block_levels(grey)
    terms, log_levels = _terms(x, y), np.log(np.maximum(levels, 1.0))
    specimen = levels > MIN_LEVEL
    if specimen.sum() < 2 * terms.shape[1]:
        return None
    used = specimen
    for _ in range(REFITS):   # keep the blocks near or above the fit: the background's envelope
        near = specimen & (log_levels - terms @ _least_squares(terms[used], log_levels[used]) > -BELOW_FIT)
        if near.sum() < 2 * terms.shape[1] or np.array_equal(near, used):
            break
        used = near
    coefficients = tuple(float(c) for c in _least_squares(terms[used], log_levels[used]))
    fit = terms[specimen] @ coefficients
    grid = np.linspace(-0.5, 0.5, 17)
    peak = float(_surface(coefficients, grid, grid[:, None]).max())
    return Lamp(coefficients, float(math.exp(fit.max() - fit.min())), peak)


class EvenedSource(ImageSource):
    """``source`` divided by its ``lamp`` (brightened where the lamp was dim), read by bands."""

    def __init__(self, source: ImageSource, lamp: Lamp) -> None:
        super().__init__()
        self.source, self.lamp, self.name = source, lamp, source.name
        self.width, self.height = source.width, source.height

    def _read_rows(self, y0: int, y1: int) -> np.ndarray:
        rows = self.source.read_rows(y0, y1)
        self.note = self.note or self.source.note
        gain = self.lamp.gain(self.width, self.height, y0, y1)
        return cv2.multiply(rows, cv2.merge([gain, gain, gain]), dtype=cv2.CV_8U)   # rounded, saturated at 255


def evened_if_uneven(src: ImageSource) -> tuple[ImageSource, list[str]]:
    """``src`` evened when its lamp varies by more than ``UNEVEN_RATIO``, and the flags that say so. Images over
    ``MAX_MEASURED_PIXELS`` are not measured."""
    if src.width * src.height > MAX_MEASURED_PIXELS:
        return src, []
    lamp = fitted_lamp(sampled_grey(src))
    if lamp is None or lamp.ratio <= UNEVEN_RATIO:
        return src, []
    return EvenedSource(src, lamp), [UNEVEN_LIGHT]
