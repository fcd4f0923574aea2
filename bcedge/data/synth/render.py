"""Render a layout strip by strip: only the cells crossing a strip are painted into it.

Per strip of rows ``[y0, y1)``: optical densities of the cells crossing ``[y0 - halo, y1 + halo)``
are added (in cell order), turned into light (background x illumination x ``exp(-OD)``), blurred
(the halo makes the blur seamless), cropped, given sensor noise and rounded to uint8.

Pixels do not depend on the strip height: each cell is painted once on its own patch (cached while
strips cross it), illumination is a function of the absolute pixel position, blur sees every row it
needs, and noise comes from a counter-based stream keyed by (seed, row). The tests check whole-image
and strip renders are byte-identical for several strip heights on this machine; bytes across
machines or library versions (libm, OpenCV) are not promised.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import cv2
import numpy as np

from bcedge.data.synth.config import RING, STREAM_NOISE, STREAM_TEXTURE
from bcedge.data.synth.layout import Layout
from bcedge.data.synth.paint import PaintContext, paint
from bcedge.data.synth.truth import CellTruth, truth_from_mask

Progress = Callable[[int, int], None]  # (rows done, total rows)


def _philox_key(seed: int, stream: int) -> np.ndarray:
    return np.random.SeedSequence([int(seed), stream]).generate_state(2, np.uint64)


def _stream(key: np.ndarray, index: int) -> np.random.Generator:
    """Counter-based stream ``index`` under ``key``: independent of any other stream or of call order."""
    return np.random.Generator(np.random.Philox(key=key, counter=[0, 0, index, 0]))


class StripRenderer:
    """Iterate a layout as uint8 RGB strips (rows, width, 3), top to bottom.

    ``truths`` (one :class:`CellTruth` per visible cell) is complete once iteration has finished
    (``finished`` is then True).
    """

    def __init__(self, layout: Layout, strip_rows: int | None = None, progress: Progress | None = None) -> None:
        self.layout = layout
        self.strip_rows = int(strip_rows or layout.config.strip_rows)
        if self.strip_rows < 1:
            raise ValueError(f"strip_rows must be >= 1, got {self.strip_rows}")
        self.progress = progress
        self.truths: dict[int, CellTruth] = {}
        self.finished = False
        style, scale = layout.style, layout.config.scale
        self.sigma = style.blur_sigma * scale
        self.halo = math.ceil(3 * self.sigma) if self.sigma >= 0.1 else 0
        self._texture_key = _philox_key(layout.seed, STREAM_TEXTURE)
        self._noise_key = _philox_key(layout.seed, STREAM_NOISE)
        w, h = layout.width, layout.height
        raw = np.array([c.bounds() for c in layout.cells], np.int64).reshape(-1, 4)
        self.bounds = np.stack([np.clip(raw[:, 0], 0, w), np.clip(raw[:, 1], 0, h),
                                np.clip(raw[:, 2], 0, w), np.clip(raw[:, 3], 0, h)], axis=1)
        visible = (self.bounds[:, 0] < self.bounds[:, 2]) & (self.bounds[:, 1] < self.bounds[:, 3])
        idx = np.flatnonzero(visible)
        self.order = idx[np.argsort(self.bounds[idx, 1], kind="stable")].tolist()
        self._patches: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _patch(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(OD, membership) of cell ``i`` over its clipped bounds; painted on first use, then cached."""
        got = self._patches.get(i)
        if got is None:
            x0, y0, x1, y1 = self.bounds[i].tolist()
            cell = self.layout.cells[i]
            ctx = PaintContext(self.layout.style, self.layout.config.scale, _stream(self._texture_key, i))
            got = paint(cell, np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5, ctx)
            self._patches[i] = got
            truth = truth_from_mask(i, cell.kind, got[1], x0, y0)
            if truth is not None:
                self.truths[i] = truth
        return got

    def _illumination(self, a: int, b: int) -> np.ndarray:
        """(b - a, width) brightness factor: a linear gradient times radial vignetting."""
        style, w, h = self.layout.style, self.layout.width, self.layout.height
        xn = (np.arange(w) + 0.5) / w - 0.5
        yn = (np.arange(a, b) + 0.5) / h - 0.5
        ox, oy = style.vignette_centre
        far = (0.5 + abs(ox)) ** 2 + (0.5 + abs(oy)) ** 2
        gx, gy = style.gradient
        col_v, row_v = ((xn - ox) ** 2 / far).astype(np.float32), ((yn - oy) ** 2 / far).astype(np.float32)
        col_g, row_g = (gx * xn).astype(np.float32), (1.0 + gy * yn).astype(np.float32)
        vignette = 1.0 - np.float32(style.vignetting) * (row_v[:, None] + col_v[None, :])
        return (row_g[:, None] + col_g[None, :]) * vignette

    def _noise(self, y0: int, y1: int) -> np.ndarray:
        width = self.layout.width * 3
        out = np.empty((y1 - y0, width), np.float32)
        for r in range(y0, y1):
            out[r - y0] = _stream(self._noise_key, r).standard_normal(width, dtype=np.float32)
        return out.reshape(y1 - y0, self.layout.width, 3)

    def _strip_od(self, active: list[int], a: int, b: int, y0: int, y1: int) -> np.ndarray:
        """Sum of the OD patches over rows [a, b); overlap counts over the core rows [y0, y1)."""
        w = self.layout.width
        od = np.zeros((b - a, w, 3), np.float32)
        count = np.zeros((y1 - y0, w), np.uint8)
        counted = []
        for i in active:
            patch, inside = self._patch(i)
            x0, py0, x1, _ = self.bounds[i].tolist()
            r0, r1 = max(py0, a), min(py0 + len(patch), b)
            od[r0 - a:r1 - a, x0:x1] += patch[r0 - py0:r1 - py0]
            c0, c1 = max(py0, y0), min(py0 + len(patch), y1)
            if c0 < c1 and self.layout.cells[i].kind != RING and i in self.truths:
                count[c0 - y0:c1 - y0, x0:x1] += inside[c0 - py0:c1 - py0]
                counted.append((i, c0, c1))
        shared = count > 1
        for i, c0, c1 in counted:
            x0, py0, x1, _ = self.bounds[i].tolist()
            inside = self._patches[i][1][c0 - py0:c1 - py0]
            self.truths[i].overlap_px += int(np.count_nonzero(inside & shared[c0 - y0:c1 - y0, x0:x1]))
        return od

    def __iter__(self) -> Iterator[np.ndarray]:
        layout, h = self.layout, self.layout.height
        bounds, order = self.bounds, self.order
        background = np.asarray(layout.style.background, np.float32)
        noise_sigma = np.float32(layout.style.noise_sigma)
        active: list[int] = []
        next_cell = 0
        for y0 in range(0, h, self.strip_rows):
            y1 = min(h, y0 + self.strip_rows)
            a, b = max(0, y0 - self.halo), min(h, y1 + self.halo)
            while next_cell < len(order) and bounds[order[next_cell], 1] < b:
                active.append(order[next_cell])
                next_cell += 1
            active = sorted(i for i in active if bounds[i, 3] > a)
            for gone in set(self._patches) - set(active):
                del self._patches[gone]
            light = self._strip_od(active, a, b, y0, y1)
            np.negative(light, out=light)
            np.exp(light, out=light)
            light *= self._illumination(a, b)[:, :, None]
            light *= background
            if self.halo:
                k = 2 * self.halo + 1
                light = cv2.GaussianBlur(light, (k, k), self.sigma, borderType=cv2.BORDER_REFLECT_101)
            light = light[y0 - a:y1 - a]
            if noise_sigma > 0:
                light += noise_sigma * self._noise(y0, y1)
            np.rint(light, out=light)
            np.clip(light, 0, 255, out=light)
            if y1 == h:  # every cell is painted: the truth is complete even if the consumer stops here
                self._patches.clear()
                self.finished = True
            if self.progress is not None:
                self.progress(y1, h)
            yield light.astype(np.uint8)

    def truth_list(self) -> list[CellTruth]:
        if not self.finished:
            raise RuntimeError("ground truth is complete only after every strip has been rendered")
        return [self.truths[i] for i in sorted(self.truths)]


def render_layout(layout: Layout, strip_rows: int | None = None) -> tuple[np.ndarray, list[CellTruth]]:
    """Render a whole (small) layout in memory: (uint8 RGB pixels, ground truth)."""
    renderer = StripRenderer(layout, strip_rows)
    pixels = np.concatenate(list(renderer), axis=0)
    return pixels, renderer.truth_list()
