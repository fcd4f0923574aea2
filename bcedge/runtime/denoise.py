"""A noisy camera's images, smoothed before counting.

A sensor at high gain adds grain the model never saw in training. Gaussian noise of 10 grey levels
takes TXL-PBC val mAP50 from 0.955 to 0.927 and white-cell recall from 97% to 87% when counted as it is
(``benchmarks/appearance.py``, "sensor noise"; smoothed: 0.955 and 96%). The model did see slightly defocused
cells in training, so a light Gaussian blur trades the grain for a softness it knows.

The noise is measured at the model's scale (after resampling, which averages part of it away) on a
central window of the image: a robust estimate from the second differences of the green channel
(Immerkaer's mask, with a median instead of a mean so that cell edges do not count as noise). The
default's val images measure 0.25-1.0 grey levels as they are; with that grain, about 6 (TXL-PBC val
3.2-6.7, BCCD val 6.4) in the pass that counts them, and about 12 with twice as much. Images above
``NOISY_SIGMA`` are blurred, band by band as they are read, by ``smoothing_sigma`` model pixels. A fixed
1 px brought both val splits with the first grain back to within 0.2 mAP50 points of their clean figures
(of 0.7, 1 and 1.4 px: 0.7 px lost 0.5 points on TXL-PBC val against 1 px, 1.4 px lost 0.2 on BCCD val);
with twice as much grain, 1.4 px did better than 1 px on both (+1.8 and +3.1 points). Hence a blur that
grows with the square root of the noise, 1 px at 6 grey levels, 1.4 px at 12. BCCD val's figures move by
up to a point with any small change of the blur: each image's measured scale is the next one's guess.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from bcedge.runtime.frames import NOISY
from bcedge.runtime.resample import CropSource, central_window
from bcedge.runtime.sources import ImageSource

NOISY_SIGMA = 2.0           # grey levels at the model's scale; clean val images measure at most 1.0
REFERENCE_NOISE = 6.0       # grey levels: what Gaussian grain of 10 grey levels measures at the model's scale ...
SMOOTH_SIGMA = 1.0          # ... and the blur (model px) that suited it best; more grain, more blur, up to:
MAX_SMOOTH_SIGMA = 1.5
SAMPLE_SIDE = 256           # the central window the noise is measured on, model pixels
# Second differences in x and y: flat and sloped areas give 0; white noise of sigma gives sigma * 6.
_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def noise_sigma(rgb: np.ndarray) -> float:
    """The standard deviation of a uint8 image's white noise, grey levels (green channel, robust to edges).
    Every other response in each direction is enough for the median, at a quarter of its cost."""
    green = np.ascontiguousarray(rgb[..., 1] if rgb.ndim == 3 else rgb)
    if min(green.shape[:2]) < 3:
        return 0.0
    response = cv2.filter2D(green, cv2.CV_16S, _MASK)[1:-1:2, 1:-1:2]   # |response| <= 16 * 255: fits int16
    return 1.4826 * float(np.median(np.abs(response))) / 6.0   # 1.4826: median absolute value -> sigma


def sampled_noise(src: ImageSource, side: int = SAMPLE_SIDE) -> float:
    """``noise_sigma`` of ``src``'s central ``side x side`` window."""
    window = CropSource(src, *central_window(src.width, src.height, side))
    return noise_sigma(window.read_all())


class SmoothedSource(ImageSource):
    """``source`` blurred by a Gaussian of ``sigma`` px, read by bands: each band is blurred with enough rows
    around it that it equals the same rows of the whole image blurred."""

    def __init__(self, source: ImageSource, sigma: float) -> None:
        super().__init__()
        self.source, self.sigma, self.name = source, float(sigma), source.name
        self.width, self.height = source.width, source.height
        self.margin = math.ceil(4 * self.sigma) + 1    # beyond OpenCV's kernel radius for this sigma

    def _read_rows(self, y0: int, y1: int) -> np.ndarray:
        top, bottom = max(0, y0 - self.margin), min(self.height, y1 + self.margin)
        rows = np.ascontiguousarray(self.source.read_rows(top, bottom))
        self.note = self.note or self.source.note
        blurred = cv2.GaussianBlur(rows, (0, 0), self.sigma, borderType=cv2.BORDER_REFLECT_101)
        return blurred[y0 - top:y1 - top]


def smoothing_sigma(noise: float) -> float:
    """The blur (model px) for grain of ``noise`` grey levels: grows with its square root, from 1 to 1.5 px
    (1 px up to ``REFERENCE_NOISE``)."""
    return float(min(MAX_SMOOTH_SIGMA, max(SMOOTH_SIGMA, SMOOTH_SIGMA * math.sqrt(noise / REFERENCE_NOISE))))


def smoothed_if_noisy(view: ImageSource) -> tuple[ImageSource, list[str]]:
    """``view`` blurred when its noise is over ``NOISY_SIGMA``, and the flags that say so."""
    noise = sampled_noise(view)
    if noise <= NOISY_SIGMA:
        return view, []
    return SmoothedSource(view, smoothing_sigma(noise)), [NOISY]
