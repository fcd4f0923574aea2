"""Uneven illumination (a camera adapter's dark corners, a lamp off-centre), evened before counting.

A cheap camera adapter or a misaligned lamp leaves a field brighter in the middle than at the edges;
the model was trained on evenly lit fields. With the corners at half the centre's brightness, TXL-PBC
val mAP50 went from 0.955 to 0.949 and the red-cell count error from 4.5% to 6.7%; at 30%, 0.928 and
9.1%. Evened as below: 0.953 and 4.8%, 0.951 and 5.6% (``benchmarks/appearance.py``, "vignetting",
"strong vignetting"; ``benchmarks/results/appearance_lighting_rerun_amd-epyc-2cpu.md``).

The lamp is measured on the image itself. The background of a smear is its brightest part, and cells
only darken it, so the lamp's brightness over a block of the image is a high percentile of that block's
grey levels (the mean of R, G and B). A smooth surface (the log of brightness, quadratic in x and y) is fitted
to the blocks' levels and refitted without the blocks far below it: a white cell filling a block darkens it, not
the lamp. Blocks with no specimen (an eyepiece's black surround) are left out. Where the fitted lamp varies by more
than ``UNEVEN_RATIO`` over the image, every pixel is divided by it (brightened to the brightest part's
level, by at most ``MAX_GAIN``) band by band as the image is read (``runtime.corrections``), and the result is
flagged ``uneven light``. An evenly lit image is counted as it is. The val splits' images measure 1.0-1.29
(white cells and clumps still tilt the fit a little; BCCD's own lamp about 1.13), and of TXL-PBC's 977
train images only one, visibly lit from one side, measures over 1.4 (1.42); with corners at half the
centre's brightness, TXL-PBC and BCCD images measure 1.27-2.05 (over 1.4 on 99.5% of them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from bcedge.runtime.sources import ImageSource

BLOCKS = 12                   # blocks along the image's longer side
LEVEL_PERCENTILE = 98         # a block's lamp level: this percentile of its grey levels
SAMPLE_SIDE = 192             # the grey levels are sampled on a grid of at least this many points along the longer side
MIN_LEVEL = 40                # grey level: a darker block shows no specimen (outside the field stop)
BELOW_FIT = 0.05              # log units: a block this far below the fit holds cells, not background
REFITS = 4                    # times the fit is redone without such blocks
UNEVEN_RATIO = 1.4            # brightest / darkest of the fitted lamp over the specimen, above which it is evened
MAX_GAIN = 3.0                # at most this brightening anywhere (a fit extrapolated into a corner)
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

    def evened(self, rows: np.ndarray, width: int, height: int, y0: int) -> np.ndarray:
        """Rows ``y0:y0 + len(rows)`` of a ``width x height`` image (uint8, 3 channels) divided by the lamp."""
        gain = self.gain(width, height, y0, y0 + len(rows))
        return cv2.multiply(rows, cv2.merge([gain, gain, gain]), dtype=cv2.CV_8U)   # rounded, saturated at 255


def fitted_lamp_if_uneven(grey: np.ndarray) -> Lamp | None:
    """The lamp fitted to a grey sample when it varies by more than ``UNEVEN_RATIO`` over the specimen, else None."""
    lamp = fitted_lamp(grey)
    return lamp if lamp is not None and lamp.ratio > UNEVEN_RATIO else None


def sample_step(width: int, height: int) -> int:
    """``sampled_colour``'s spacing in pixels: sample point (i, j) is pixel (i * step, j * step)."""
    return max(1, max(width, height) // SAMPLE_SIDE)


def sampled_colour(src: ImageSource) -> np.ndarray:
    """``src`` (RGB uint8) on a grid of at least ``SAMPLE_SIDE`` points along its longer side (every
    ``sample_step``-th pixel), read by bands. The lamp check and the field stop's (``runtime.field_stop``) read it."""
    step = sample_step(src.width, src.height)
    band = max(step, READ_ROWS - READ_ROWS % step)   # a whole number of steps: every band starts on a sample row
    return np.concatenate([src.read_rows(y0, min(src.height, y0 + band))[::step, ::step]
                           for y0 in range(0, src.height, band)])


def grey_levels(rgb: np.ndarray) -> np.ndarray:
    """Grey levels (uint8) of RGB uint8 pixels: the mean of R, G and B. The mean, not the luminance: a white cell's
    purple, dark in green, then weighs less against the background."""
    return cv2.transform(rgb, _MEAN_OF_CHANNELS)


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
    """Least squares (the minimum-norm solution where the blocks left do not pin every term down)."""
    return np.linalg.lstsq(terms, values, rcond=None)[0]


def fitted_lamp(grey: np.ndarray) -> Lamp | None:
    """The lamp fitted to a grey image's block levels, or None where too few blocks show specimen."""
    levels, x, y = block_levels(grey)
    if len(np.unique(x)) < 3 or len(np.unique(y)) < 3:   # a strip of an image: no surface to fit across it
        return None
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
