"""The driver's ``Counter`` for huge images: ``Counter``'s own algorithm, with the tiles counted on workers.

``BandedCounter`` runs ``Counter.count_file`` unchanged on the driver: the size check, the scale
estimate (its probe pass, the full pass, the refinement), the merge with the grid's cores, the
mapping back to image pixels and the containment rule. Only its tile stages are replaced: where
``Counter`` reads a batch of tiles and infers it, this one sends bands of the grid to workers
(``bcedge.cluster.bands``) and takes back each tile's detections. So a huge image's result is the
local run's by construction. The driver reads only a central window of each pass's pixels (the noise
measure, ``bcedge.runtime.denoise``; its decision goes to the workers with the bands) and never loads
the model (``MetaOnly`` stands in for the backend: the metadata and the workers' description).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bcedge.cluster.bands import band_target, split_bands, view_region
from bcedge.cluster.jobs import BandJob, BandOutcome
from bcedge.runtime.counter import Counter, CountResult
from bcedge.runtime.scale import History
from bcedge.runtime.sources import ImageSource
from bcedge.runtime.tiling import TileGrid

SendBands = Callable[[list[BandJob]], list[Callable[[], BandOutcome]]]   # jobs -> one "wait for it" per job


class MetaOnly:
    """A backend that only describes the workers' model: enough for a ``Counter`` that never infers."""

    decodes_on_device = False

    def __init__(self, meta: Any, description: str) -> None:
        self.meta, self._description = meta, description

    def describe(self) -> str:
        return self._description

    def infer(self, batch):
        raise RuntimeError("the driver's counter does not infer: its tiles are counted on the workers")


class BandedCounter(Counter):
    def __init__(self, backend: MetaOnly, send_bands: SendBands, workers: int = 1,
                 on_tiles: Callable[[int], Any] | None = None, **options) -> None:
        super().__init__(backend, **options)
        self._send, self._workers, self._on_tiles = send_bands, max(1, workers), on_tiles
        self._path = ""

    def count_path(self, path: str, history: History) -> CountResult:
        """``count_file(path)`` as a local ``Counter`` that had counted images leaving ``history``."""
        self._path = str(path)
        self.scale_history = history
        return self.count_file(path)

    # -- Counter's tile stages, replaced: bands go out, tile detections come back -----------------

    def _batches(self, src: ImageSource, grid: TileGrid):
        window, factor, smooth, corrections = view_region(src)
        shape = (grid.tile_w, grid.tile_h, len(grid))
        ranges = split_bands(len(grid), grid.n_cols, self.batch_for(grid), band_target(len(grid), self._workers))
        jobs = [BandJob(self._path, window, factor, r, shape, smooth, corrections) for r in ranges]
        for outcome in self._send(jobs):   # all sent before the first is awaited
            yield src, grid, outcome

    def _prepare(self, item):
        yield item

    def _infer(self, item):
        src, grid, outcome = item
        yield src, grid, outcome()

    def _decode(self, item):
        src, grid, outcome = item
        if isinstance(outcome, BaseException):   # WorkerLost
            raise outcome
        if outcome.error is not None:
            raise outcome.error
        _mark_note(src, outcome.note)
        if self._on_tiles:
            self._on_tiles(len(outcome.per_tile))
        yield [(grid[index], dets) for index, dets in outcome.per_tile]


def _mark_note(view: ImageSource, note: str | None) -> None:
    """Give the driver's sources the reader's note (greyscale, 16-bit) a worker saw: the image's flags."""
    while note and view is not None:
        view.note = view.note or note
        view = getattr(view, "source", None)
