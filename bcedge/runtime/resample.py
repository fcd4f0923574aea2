"""Image sources seen through a change of scale or a crop, still read by bands of rows.

``ResampledSource`` lets the tiling runtime work at the model's scale on a huge smear without
resampling it whole: each band of output rows is made from the band of source rows it covers.
``CropSource`` is a window of a source (the first pass of the auto scale estimate).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from bcedge.imageops import resample_interpolation
from bcedge.runtime.sources import ImageSource


class ResampledSource(ImageSource):
    """``source`` scaled by ``factor`` (output pixels per source pixel)."""

    def __init__(self, source: ImageSource, factor: float) -> None:
        super().__init__()
        self.source, self.factor, self.name = source, float(factor), source.name
        self.width = max(1, round(source.width * self.factor))
        self.height = max(1, round(source.height * self.factor))

    def _read_rows(self, y0: int, y1: int) -> np.ndarray:
        scale_y = self.source.height / self.height
        top = max(0, math.floor(y0 * scale_y) - 1)
        bottom = min(self.source.height, math.ceil(y1 * scale_y) + 1)
        rows = np.ascontiguousarray(self.source.read_rows(top, bottom))
        self.note = self.note or self.source.note
        band_h = max(1, round((bottom - top) / scale_y))
        band = cv2.resize(rows, (self.width, band_h), interpolation=resample_interpolation(self.factor))
        start = min(max(0, round(y0 - top / scale_y)), max(0, band_h - (y1 - y0)))
        out = band[start:start + (y1 - y0)]
        if out.shape[0] < y1 - y0:   # rounding at the bottom edge: repeat the last row
            out = np.concatenate([out, np.repeat(out[-1:], y1 - y0 - out.shape[0], axis=0)])
        return out


class CropSource(ImageSource):
    """The window ``x0:x1, y0:y1`` of ``source``."""

    def __init__(self, source: ImageSource, x0: int, y0: int, x1: int, y1: int) -> None:
        super().__init__()
        self.source, self.name = source, source.name
        self.x0, self.y0 = int(x0), int(y0)
        self.width, self.height = int(x1 - x0), int(y1 - y0)

    def _read_rows(self, y0: int, y1: int) -> np.ndarray:
        rows = self.source.read_rows(self.y0 + y0, self.y0 + y1)
        self.note = self.note or self.source.note
        return rows[:, self.x0:self.x0 + self.width]


def central_window(width: int, height: int, side: int) -> tuple[int, int, int, int]:
    """The central ``side x side`` window of an image (the whole image along a shorter side)."""
    w, h = min(width, side), min(height, side)
    x0, y0 = (width - w) // 2, (height - h) // 2
    return x0, y0, x0 + w, y0 + h
