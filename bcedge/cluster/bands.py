"""Bands of a huge image: runs of its tile grid that workers count on their own, reading the file themselves.

A whole-slide image is not shipped to workers as pixels. The driver lays the same tile grid over it
that ``Counter`` would (the same scale, the same tile size) and cuts the grid into bands of
consecutive tiles; a worker opens the file from the path it shares with the driver, reads only the
strips its band covers, and returns each tile's detections. The driver then merges all tiles with
the grid's own cores (``bcedge.runtime.merge``): cells on band borders follow the same seam-exact
rule as cells on tile borders, because a band border is a tile border.

Bands start on whole inference batches (``Counter.batch_for``), so every batch a worker runs holds
the same tiles as in the local run, and each tile's detections are the local run's bit for bit
(batch composition can change the last bits on GPUs). Where the batch allows, bands start on a
row of tiles, so neighbouring bands seldom read the same strip.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from bcedge.cluster.jobs import BandJob, BandOutcome
from bcedge.runtime.corrections import NO_CORRECTIONS, CorrectedSource, Corrections
from bcedge.runtime.denoise import SmoothedSource
from bcedge.runtime.frames import decode_cap
from bcedge.runtime.pipeline import batched, run_stages
from bcedge.runtime.resample import CropSource, ResampledSource
from bcedge.runtime.sources import ImageSource, iter_tiles, open_image
from bcedge.runtime.tiling import Strip, TileGrid

BAND_PIXELS = 2**26          # TIFF images above this many pixels (8k x 8k) are counted in bands
MAX_BAND_TILES = 256         # a retried band repeats at most this much work


def split_bands(tiles: int, columns: int, batch: int, target: int) -> list[tuple[int, int]]:
    """``[t0, t1)`` ranges covering ``tiles`` tiles (row-major, ``columns`` per row), about ``target``
    tiles each: every start a multiple of ``batch``, at the first such tile of a row where possible."""
    rows_per_band = max(1, round(max(target, batch) / columns))
    bounds = [0]
    row = 0
    while bounds[-1] < tiles:
        row += rows_per_band
        start = min(tiles, math.ceil(row * columns / batch) * batch)
        if start > bounds[-1]:
            bounds.append(start)
    return list(itertools.pairwise(bounds))


def band_target(tiles: int, workers: int) -> int:
    """Tiles per band: about four bands per worker (late bands balance the load), at most ``MAX_BAND_TILES``."""
    return max(1, min(MAX_BAND_TILES, math.ceil(tiles / (4 * max(1, workers)))))


@dataclass(frozen=True)
class GridRange:
    """The strips of ``grid`` holding tiles ``t0:t1``, each with only those tiles: what ``iter_tiles`` reads."""

    grid: TileGrid
    t0: int
    t1: int

    @property
    def image_w(self) -> int:
        return self.grid.image_w

    @property
    def image_h(self) -> int:
        return self.grid.image_h

    def strips(self) -> list[Strip]:
        out = []
        for strip in self.grid.strips():
            tiles = tuple(t for t in strip.tiles if self.t0 <= t.index < self.t1)
            if tiles:
                out.append(Strip(strip.index, strip.y0, strip.y1, strip.pad_y, tiles))
        return out


def band_view(source: ImageSource, window: tuple[int, int, int, int] | None, factor: float,
              smooth: float = 0.0, corrections: Corrections = NO_CORRECTIONS) -> ImageSource:
    """What ``Counter`` tiles for a pass: the image (its light corrected where needed; or its probe window) at the
    pass's scale, smoothed if noisy."""
    source = CorrectedSource(source, corrections) if corrections else source
    region = CropSource(source, *window) if window else source
    view = region if factor == 1.0 else ResampledSource(region, factor)
    return SmoothedSource(view, smooth) if smooth else view


def view_region(view: ImageSource) -> tuple[tuple[int, int, int, int] | None, float, float, Corrections]:
    """``band_view``'s arguments back from a view ``Counter`` made: (window or None, factor, smooth, corrections)."""
    smooth = 0.0
    if isinstance(view, SmoothedSource):
        view, smooth = view.source, view.sigma
    factor = 1.0
    if isinstance(view, ResampledSource):
        view, factor = view.source, view.factor
    window = None
    if isinstance(view, CropSource):
        window = (view.x0, view.y0, view.x0 + view.width, view.y0 + view.height)
        view = view.source
    return window, factor, smooth, view.corrections if isinstance(view, CorrectedSource) else NO_CORRECTIONS


def count_band(counter, job: BandJob) -> BandOutcome:
    """Detections of each tile of ``job`` (tile pixels), through the counter's own tile stages
    (prepare, infer, decode), so they are what the local run's ``Counter`` finds on those tiles."""
    with open_image(job.path, decode_cap(counter.max_pixels)) as source:
        view = band_view(source, job.window, job.factor, job.smooth, job.corrections)
        grid = counter.plan(view.width, view.height)
        if (grid.tile_w, grid.tile_h, len(grid)) != tuple(job.grid):
            raise ValueError(f"{job.path}: this worker plans {len(grid)} tiles of {grid.tile_w}x{grid.tile_h}, the "
                             f"driver {job.grid[2]} of {job.grid[0]}x{job.grid[1]}: do all machines run the same "
                             "bcedge and model?")
        t0, t1 = job.tiles
        tiles = iter_tiles(view, GridRange(grid, t0, t1), pad_value=counter.meta.pad_value)  # type: ignore[arg-type]
        batches = batched(tiles, counter.batch_for(grid))
        per_tile = [(tile.index, dets) for decoded in run_stages(batches, counter.tile_stages) for tile, dets in decoded]
        return BandOutcome(job.tiles, per_tile, note=view.note)
