"""How each kind of cell looks: one painter per kind, registered by name.

A painter fills a small local patch (the cell's bounds clipped to the image) with optical density
(H, W, 3) float32 and returns the cell's membership mask (pixel centres inside its outline), which
is the ground truth. Painting depends only on the cell and its own random stream, never on the strip
being rendered, so strip height cannot change the pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from bcedge.data.synth.config import PLATELETS, RBC, RING, WBC, SmearStyle
from bcedge.data.synth.geometry import coverage
from bcedge.data.synth.layout import Cell
from bcedge.registry import Registry


@dataclass(frozen=True)
class PaintContext:
    style: SmearStyle
    scale: float
    rng: np.random.Generator  # the cell's own stream (seed, cell index)


Painter = Callable[[Cell, np.ndarray, np.ndarray, PaintContext], tuple[np.ndarray, np.ndarray]]
PAINTERS: Registry[Painter] = Registry("cell kind")
painter = PAINTERS.register   # @painter(kind)


def _colour(od_field: np.ndarray, rgb) -> np.ndarray:
    return od_field[..., None] * np.asarray(rgb, np.float32)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Blurred white noise with unit standard deviation (about), for chromatin and cytoplasm texture."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    sigma = max(sigma, 0.5)
    k = 2 * math.ceil(3 * sigma) + 1
    smooth = cv2.GaussianBlur(noise, (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)
    return smooth * np.float32(2 * sigma * math.sqrt(math.pi))


@painter(RBC)
def paint_rbc(cell: Cell, xs: np.ndarray, ys: np.ndarray, ctx: PaintContext):
    """A biconcave disc: a thick rim and a pale centre (the central pallor)."""
    look = cell.look
    s, length = cell.blobs[0].field(xs, ys)
    inside = s <= 1
    sc = np.minimum(s, np.float32(1.0))
    thickness = 1 - np.float32(look.pallor) * np.exp(-((sc / np.float32(look.pallor_radius)) ** 4))
    thickness *= 1 + np.float32(look.rim) * np.exp(-((sc - np.float32(0.9)) / np.float32(0.12)) ** 2)
    thickness *= coverage(s, length) * np.float32(look.strength)
    return _colour(thickness, ctx.style.rbc_od), inside


@painter(WBC)
def paint_wbc(cell: Cell, xs: np.ndarray, ys: np.ndarray, ctx: PaintContext):
    """Pale textured cytoplasm, a violet nucleus made of lobes, eosinophils with orange granules."""
    look, style, scale = cell.look, ctx.style, ctx.scale
    s, length = cell.blobs[0].field(xs, ys)
    inside = s <= 1
    body = coverage(s, length)
    shape = body.shape
    cyto_rgb = np.asarray(style.cytoplasm_od, np.float32)
    if look.subtype in ("lymphocyte", "monocyte"):
        cyto_rgb = cyto_rgb * np.float32([2.5, 0.9, 0.6])  # bluish-grey cytoplasm
    od = _colour(body * (0.85 + 0.2 * _smooth_noise(ctx.rng, shape, 3 * scale)), cyto_rgb)
    nucleus = np.zeros(shape, np.float32)
    for lobe in look.lobes:
        np.maximum(nucleus, coverage(*lobe.field(xs, ys)), out=nucleus)
    nucleus *= body
    chromatin = np.clip(0.9 + 0.22 * _smooth_noise(ctx.rng, shape, 1.5 * scale), 0.5, 1.4)
    od += _colour(nucleus * chromatin, style.nucleus_od)
    if look.granules > 0:
        dots = np.zeros(shape, np.float32)
        n = int(look.granules * float(inside.sum()) / 1000.0)
        dots[ctx.rng.integers(0, shape[0], n), ctx.rng.integers(0, shape[1], n)] = 1.0
        sigma = max(1.2 * scale, 0.5)
        k = 2 * math.ceil(3 * sigma) + 1
        dots = cv2.GaussianBlur(dots, (k, k), sigma) * np.float32(2 * math.pi * sigma * sigma)
        od += _colour(np.minimum(dots, 1.3) * body * (1 - nucleus), style.granule_od)
    return od, inside


@painter(PLATELETS)
def paint_platelet(cell: Cell, xs: np.ndarray, ys: np.ndarray, ctx: PaintContext):
    """A small irregular purple body with a darker granular centre."""
    s, length = cell.blobs[0].field(xs, ys)
    grain = np.clip(0.75 + 0.35 * _smooth_noise(ctx.rng, s.shape, 1.2 * ctx.scale), 0.3, 1.4)
    centre = 1 + 0.5 * np.exp(-(np.minimum(s, 1) / np.float32(0.55)) ** 2)
    density = coverage(s, length) * grain * centre * np.float32(cell.look.strength)
    return _colour(density, ctx.style.platelet_od), s <= 1


@painter(RING)
def paint_ring(cell: Cell, xs: np.ndarray, ys: np.ndarray, ctx: PaintContext):
    """A ring-stage parasite: a thin violet ring with a dark chromatin dot. Its mask is the filled ring
    (outline) plus the dot."""
    ring_blob, dot_blob = cell.blobs
    s, length = ring_blob.field(xs, ys)
    ring = np.clip(coverage(s, length) - coverage(s, length, cell.look.inner), 0.0, 1.0)
    ds, dlength = dot_blob.field(xs, ys)
    dot = coverage(ds, dlength)
    od = _colour(ring, ctx.style.parasite_od) + _colour(dot, np.asarray(ctx.style.parasite_od, np.float32) * 1.6)
    return od, (s <= 1) | (ds <= 1)


def paint(cell: Cell, xs: np.ndarray, ys: np.ndarray, ctx: PaintContext) -> tuple[np.ndarray, np.ndarray]:
    return PAINTERS.lookup(cell.kind)(cell, xs, ys, ctx)
