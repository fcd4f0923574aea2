"""Which tile each merged detection came from, observed through ``Counter.add_tile_hook``."""
from __future__ import annotations

import numpy as np

from bcedge.detections import Detections
from bcedge.runtime.tiling import Tile, TileGrid


class TileRecorder:
    """Learns which tile each merged detection came from, through ``Counter.add_tile_hook``.

    The hook hands over each tile's detections as the counter decoded them, so ``sources(merged, grid)``
    finds each merged box among the per-tile boxes: the tile index, or -1. A new pass over the image
    (tile 0 again) starts the record afresh. ``close()`` removes the hook.
    """

    def __init__(self, counter) -> None:
        self.per_tile: list[tuple[Tile, Detections]] = []
        self.close = counter.add_tile_hook(self._record)

    def _record(self, tile: Tile, dets: Detections) -> None:
        if tile.index == 0:
            self.per_tile = []
        self.per_tile.append((tile, dets))

    def sources(self, merged: Detections, grid: TileGrid) -> np.ndarray:
        if len(self.per_tile) != len(grid):
            raise RuntimeError(f"recorded {len(self.per_tile)} tiles of a {len(grid)}-tile grid")
        where: dict[bytes, int] = {}
        for tile, d in self.per_tile:
            shifted = d.shift(tile.x0, tile.y0).xyxy.astype(np.float32)
            for row in shifted:
                where.setdefault(row.tobytes(), tile.index)
        return np.array([where.get(row.tobytes(), -1) for row in merged.xyxy.astype(np.float32)], np.int64)
