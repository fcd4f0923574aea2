"""An eyepiece camera's round field: the dark surround filled with the field's background before counting.

A camera on an eyepiece (a phone adapter, an eyepiece camera) sees a round field with black around it. The
detector knows cells cut by a straight image edge, where the tile's padding continues the image, not cells cut
by a black arc: with TXL-PBC val masked outside a circle as wide as each image's longer side, mAP50 was 0.941
(0.955 on the frames as they are) and white-cell recall 94.8% (97.0%). With the surround filled with the field's
own background colour the cut cells look like cells on an empty part of the slide: 0.958 and 97.6%; through a
smaller field with a soft edge, 0.953 against 0.919 (``benchmarks/eyepiece_field.py``).

The surround is found on the coarse sample the lamp check reads (``illumination.sampled_colour``): the regions
with no specimen (every sample point nearby, averaged over its 3 x 3 neighbours against a camera's noise, darker than
``illumination.MIN_LEVEL`` grey levels and than a quarter of the image's brightest: dark cells in a dim corner have
brighter background between them) that hold a corner of the image and cover between ``MIN_SURROUND`` and
``MAX_SURROUND`` of it; a dark nucleus cut by a corner, or a frame's one-pixel black border, is far smaller. Of
TXL-PBC's and BCCD's 1,548 images, one has such a surround (a black band along its top); no appearance shift of
``bcedge.data.appearance`` makes one (the darkest corners, the dim lamp and heavy noise tried on all of them, the
others on a fifth). At full
resolution, pixels within ``RIM`` of that region and darker than half the field's background in every channel are
filled, so the soft rim of a real field stop goes too. Images without such a surround are counted as they are.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bcedge.runtime.illumination import MIN_LEVEL, Lamp, grey_levels

MIN_SURROUND = 0.02         # share of the image a dark corner region must cover to be a field stop
MAX_SURROUND = 0.9          # above this share the image is dark, not ringed (a dark-field or blank frame)
RIM = 0.01                  # of the image's longer side: how far into the field the soft rim is looked for
RIM_DARKNESS = 0.5          # a rim pixel darker than this share of the background in every channel is filled
BACKGROUND_PERCENTILE = 90  # the field's background: its pixels at least this bright (grey), their median colour
SURROUND_DARKNESS = 0.25    # and darker than this share of the image's brightest (a dark camera's dim corners are not)
NEIGHBOURHOOD = 2           # sample points: a point is dark when every point this near is (dark cells in dim corners are
                            # not a surround: the background between them is brighter)


@dataclass(frozen=True, eq=False)
class FieldStop:
    """Where the surround is (``rim_zone``: ``sampled_colour``'s grid, True within ``RIM`` of the dark region;
    ``step``: its spacing in pixels) and what it is filled with (``colour``: the field's background, RGB)."""

    rim_zone: np.ndarray
    step: int
    colour: tuple[int, int, int]

    @property
    def fill_below(self) -> tuple[int, int, int]:
        """Per channel: a rim pixel darker than this in every channel is filled."""
        return tuple(max(MIN_LEVEL, int(RIM_DARKNESS * c)) for c in self.colour)

    def _nearest_sample(self, pixels: np.ndarray, samples: int) -> np.ndarray:
        return np.minimum((pixels + self.step // 2) // self.step, samples - 1)

    def _columns(self, zone_rows: np.ndarray, width: int) -> np.ndarray:
        """``zone_rows`` (a row per image row) widened to ``width`` pixels, each taking its nearest sample's column
        (``_nearest_sample``; a repeat, 10x faster than gathering column by column)."""
        spans = np.full(zone_rows.shape[1], self.step)
        spans[0] -= self.step // 2
        spans[-1] += max(0, width - int(spans.sum()))
        return np.ascontiguousarray(zone_rows.repeat(spans, axis=1)[:, :width])

    def filled(self, rows: np.ndarray, width: int, height: int, y0: int) -> np.ndarray:
        """Rows ``y0:y0 + len(rows)`` of a ``width x height`` image (RGB uint8) with the surround filled."""
        zone_rows = self.rim_zone[self._nearest_sample(np.arange(y0, y0 + len(rows)), len(self.rim_zone))]
        if not zone_rows.any():
            return rows
        zone = self._columns(zone_rows, width).view(np.uint8)
        dark = cv2.inRange(rows, (0, 0, 0), tuple(level - 1 for level in self.fill_below))
        fill, rows = cv2.bitwise_and(zone, dark), rows.copy()
        cv2.bitwise_and(rows, (0, 0, 0, 0), dst=rows, mask=fill)   # masked cv2 calls: numpy's masked writes are 10x slower
        return cv2.add(rows, (*self.colour, 0), dst=rows, mask=fill)


def _regions_holding(dark: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The connected regions (8-neighbours) of ``dark`` that hold a True of ``seeds``."""
    _, labels = cv2.connectedComponents(dark.view(np.uint8), connectivity=8)
    return np.isin(labels, np.unique(labels[seeds & dark]))


def surround_of(grey: np.ndarray) -> np.ndarray:
    """Where a coarse grey sample shows no specimen around the field: regions holding a corner of the image whose
    every point has only dark points near it (dark cells in a dim corner have brighter background between them),
    grown back to their own dark points (slivers where a circle grazes the image edge)."""
    darkest = min(MIN_LEVEL, SURROUND_DARKNESS * float(np.percentile(grey, 99)))
    dark = grey < darkest
    steady = cv2.blur(grey, (3, 3))   # a camera's noise in the dark would lift every neighbourhood's brightest point
    empty = cv2.dilate(steady, np.ones((2 * NEIGHBOURHOOD + 1,) * 2, np.uint8)) < darkest
    corners = np.zeros_like(dark)
    corners[[0, 0, -1, -1], [0, -1, 0, -1]] = True
    return _regions_holding(dark, _regions_holding(empty, corners))


def found_field_stop(colour: np.ndarray, step: int, lamp: Lamp | None = None) -> FieldStop | None:
    """The field stop seen in a coarse RGB sample of an image (``illumination.sampled_colour``, every ``step``-th
    pixel), or None. ``lamp``: the lamp the image will be evened by first, so the fill matches the evened background."""
    if colour[[0, 0, -1, -1], [0, -1, 0, -1]].mean(axis=1).min() >= MIN_LEVEL:   # most images: no corner is dark
        return None
    grey = grey_levels(colour)
    surround = surround_of(grey)
    if not MIN_SURROUND <= surround.mean() <= MAX_SURROUND:
        return None
    if lamp is not None:
        grid_h, grid_w = grey.shape
        gain = lamp.gain(grid_w, grid_h, 0, grid_h)[..., None]
        colour = np.clip(colour * gain + 0.5, 0, 255).astype(np.uint8)
        grey = grey_levels(colour)
    field = grey[~surround]
    bright = field >= np.percentile(field, BACKGROUND_PERCENTILE)
    background = np.median(colour[~surround][bright], axis=0)
    reach = max(1, round(RIM * max(grey.shape)))
    rim_zone = cv2.dilate(surround.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
    return FieldStop(rim_zone, step, tuple(round(float(c)) for c in background))
