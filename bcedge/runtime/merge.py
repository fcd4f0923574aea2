"""Merge per-tile detections into one set per image, so a cell cut by a tile border counts once.

Strategies, registered by name (``MERGE_STRATEGIES``):

``core`` (default)
    Keep a detection only from the tile whose core holds its centre (cores partition the image;
    see ``tiling``), then class-aware NMS over what remains. With ``overlap >= cell diameter``
    the owning tile saw the cell whole, so this counts every cell once whatever the tile size or
    grid offset. A cell centred on a core boundary is seen whole by both tiles, and box jitter
    could push both centres out of their own cores; so each core's inner sides are widened by
    ``tolerance`` px (at most a quarter of the box's size) and NMS removes the duplicates this
    keeps (a cut cell's partial box that close to the boundary covers most of the cell, so its
    IoU with the whole box is high). Use an ``iou`` no lower than the detector's own NMS
    threshold, so this pass suppresses nothing the detector kept inside one tile.
``core+ios``
    ``core``, then merge same-class pairs from *different* tiles whose intersection over the
    smaller box exceeds ``ios`` (a partial box of a cut cell sits inside the whole one).
``nms``
    Plain class-aware NMS over all tile detections (no cores): partial boxes at seams survive
    when their IoU with the whole box is low, so cut cells can count twice. For comparison.
``greedy_nmm``
    SAHI's GREEDYNMM with IOS matching (``ios`` threshold, SAHI's default 0.5), class-aware:
    merges boxes instead of dropping them; it also merges overlapping distinct cells. For
    comparison with SAHI.

Output: one ``Detections`` in image coordinates, highest score first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from bcedge.detections import Detections
from bcedge.registry import Registry
from bcedge.runtime.nms import nms
from bcedge.runtime.nms.nmm import cross_tile_merge, greedy_nmm
from bcedge.runtime.tiling import Tile


@dataclass(frozen=True)
class MergeInput:
    """Detections of all tiles in image coordinates, with the tile each came from."""

    dets: Detections
    tile_ids: np.ndarray  # (N,) index into ``tiles``
    tiles: Sequence[Tile]


@dataclass(frozen=True)
class MergeParams:
    """How tile detections become one set: the strategy and its thresholds (see the module docstring)."""

    strategy: str = "core"
    iou: float = 0.5            # NMS IoU (core, core+ios, nms)
    ios: float = 0.5            # intersection over the smaller box (core+ios, greedy_nmm)
    nms_backend: str = "auto"   # bcedge.runtime.nms backend
    tolerance: float = 2.0      # px a core's inner sides are widened by (core, core+ios)

    def __post_init__(self) -> None:
        check_strategy(self.strategy)
        if self.tolerance < 0:
            raise ValueError(f"merge: tolerance must be >= 0 pixels, got {self.tolerance!r}")


Strategy = Callable[[MergeInput, MergeParams], Detections]
MERGE_STRATEGIES: Registry[Strategy] = Registry("merge strategy")


def strategy_names() -> list[str]:
    return MERGE_STRATEGIES.names()


def check_strategy(name: str) -> str:
    """``name`` if it is a registered strategy, else ValueError naming the known ones."""
    MERGE_STRATEGIES.lookup(name)
    return name


def merge_tiles(per_tile: Sequence[tuple[Tile, Detections]], params: MergeParams | None = None) -> Detections:
    """Merge detections given per tile in *tile* coordinates (pixel (0, 0) = the tile's corner)."""
    tiles = [tile for tile, _ in per_tile]
    dets = Detections.concat(d.shift(tile.x0, tile.y0) for tile, d in per_tile)
    tile_ids = np.repeat(np.arange(len(per_tile), dtype=np.int64), [len(d) for _, d in per_tile])
    return merge_detections(dets, tile_ids, tiles, params)


def merge_detections(dets: Detections, tile_ids: np.ndarray, tiles: Sequence[Tile],
                     params: MergeParams | None = None) -> Detections:
    """Merge detections already in *image* coordinates; ``tile_ids[k]`` indexes ``tiles``."""
    params = params or MergeParams()
    tile_ids = np.asarray(tile_ids, dtype=np.int64).reshape(-1)
    if len(tile_ids) != len(dets):
        raise ValueError(f"merge: {len(dets)} detections but {len(tile_ids)} tile ids")
    if len(tile_ids) and (tile_ids.min() < 0 or tile_ids.max() >= len(tiles)):
        raise ValueError(f"merge: tile ids must index the {len(tiles)} tiles given")
    if len(dets) == 0:
        return Detections.empty()
    dets = _clip_to_image(dets, tiles)
    return MERGE_STRATEGIES[params.strategy](MergeInput(dets, tile_ids, tiles), params)


def core_bounds(tiles: Sequence[Tile]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tile, the core's low and high corners (float64; open, +-inf, on the image border), and the
    image size (width, height, width, height) as float32 clip limits. The host and device merges share it."""
    cores = np.array([t.core for t in tiles], dtype=np.float64).reshape(-1, 4)
    size = np.array([(t.image_w, t.image_h) for t in tiles], dtype=np.float64).reshape(-1, 2)
    lo = np.where(cores[:, :2] <= 0, -np.inf, cores[:, :2])
    hi = np.where(cores[:, 2:] >= size, np.inf, cores[:, 2:])
    width, height = size[:, 0].max(initial=0), size[:, 1].max(initial=0)
    return lo, hi, np.array([width, height, width, height], np.float32)


def in_own_core(inp: MergeInput, tolerance: float = 0.0) -> np.ndarray:
    """Mask of detections whose centre lies in the core of the tile they came from.

    Core sides on the image border are open, so centres on (or beyond) the border still count;
    inner sides are widened by ``tolerance`` px, at most a quarter of each box's smaller side.
    """
    lo, hi, _ = core_bounds(inp.tiles)
    centres = inp.dets.centers().astype(np.float64)
    sides = (inp.dets.xyxy[:, 2:] - inp.dets.xyxy[:, :2]).astype(np.float64)
    tol = np.minimum(float(tolerance), np.clip(sides.min(axis=1), 0, None) / 4)[:, None]
    t = inp.tile_ids
    return np.all((centres >= lo[t] - tol) & (centres < hi[t] + tol), axis=1)


def _clip_to_image(dets: Detections, tiles: Sequence[Tile]) -> Detections:
    """Clip boxes to the image: padded tiles (image smaller than a tile) can report boxes past it."""
    limits = core_bounds(tiles)[2]
    if limits[0] <= 0 or limits[1] <= 0:
        return dets
    return Detections(np.clip(dets.xyxy, 0, limits), dets.scores, dets.class_ids)


def _nms_select(dets: Detections, params: MergeParams) -> np.ndarray:
    return nms(dets.xyxy, dets.scores, dets.class_ids, params.iou, backend=params.nms_backend)


@MERGE_STRATEGIES.register("core")
def _core(inp: MergeInput, params: MergeParams) -> Detections:
    inside = np.flatnonzero(in_own_core(inp, params.tolerance))
    kept = inside[_nms_select(inp.dets[inside], params)]
    return inp.dets[kept]


@MERGE_STRATEGIES.register("core+ios")
def _core_ios(inp: MergeInput, params: MergeParams) -> Detections:
    inside = np.flatnonzero(in_own_core(inp, params.tolerance))
    kept = inside[_nms_select(inp.dets[inside], params)]
    dets = inp.dets[kept]
    keep, boxes = cross_tile_merge(dets.xyxy, dets.scores, dets.class_ids, inp.tile_ids[kept], params.ios)
    return Detections(boxes, dets.scores[keep], dets.class_ids[keep])


@MERGE_STRATEGIES.register("nms")
def _plain_nms(inp: MergeInput, params: MergeParams) -> Detections:
    return inp.dets[_nms_select(inp.dets, params)]


@MERGE_STRATEGIES.register("greedy_nmm")
def _greedy_nmm(inp: MergeInput, params: MergeParams) -> Detections:
    d = inp.dets
    keep, boxes = greedy_nmm(d.xyxy, d.scores, d.class_ids, params.ios)
    return Detections(boxes, d.scores[keep], d.class_ids[keep])
