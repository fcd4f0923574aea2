"""A perfect detector built from ground truth, for measuring what tiling and merging do on their own.

``Truth`` holds a smear's ground-truth boxes; ``OracleBackend`` serves, for each tile of a known grid,
exactly the cells visible in it (whole cells and the partial boxes of cut ones), so any seam error
shows as a wrong count.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bcedge.artifact import ModelMeta
from bcedge.backends.base import Backend
from bcedge.runtime.tiling import TileGrid


@dataclass
class Truth:
    """Ground-truth boxes (xyxy, image pixels) and class ids in the order of ``class_names``."""

    xyxy: np.ndarray
    class_ids: np.ndarray
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.xyxy)

    @property
    def counts(self) -> dict[str, int]:
        return {n: int((self.class_ids == k).sum()) for k, n in enumerate(self.class_names)}

    @property
    def max_side(self) -> float:
        return float((self.xyxy[:, 2:] - self.xyxy[:, :2]).max()) if len(self) else 0.0


class OracleBackend(Backend):
    """A perfect detector built from the ground truth: every cell visible in a tile is reported, clipped
    to the tile. Cells seen whole score 0.9; cells cut by the tile border (at least ``min_visible`` of
    their box inside) are reported too, as partial boxes scoring 0.55-0.85: the hard case for seams,
    since a merge that keeps them counts a cut cell twice.

    It cannot see where a tile lies from its pixels, so it follows the grid given to ``expect``:
    ``Counter`` sends tiles in grid order (strips top to bottom, left to right; one inference at a
    time). ``finish`` checks that exactly the grid's tiles were served.
    """

    name = "oracle"

    def __init__(self, truth: Truth, tile: tuple[int, int], min_visible: float = 0.1) -> None:
        self.truth, self.min_visible = truth, float(min_visible)
        self.meta = ModelMeta(arch="oracle", head="oracle", backbone="oracle", class_names=truth.class_names,
                              input_size=tuple(tile), max_object_size=truth.max_side,
                              default_score_threshold=0.5, nms_iou=0.5, max_detections=100_000)
        self.device, self.precision, self.inference_seconds = "cpu", "exact", []
        self.path = Path("oracle")
        self._tiles: list = []
        self._cursor = 0
        self._areas = np.prod(truth.xyxy[:, 2:] - truth.xyxy[:, :2], axis=1)

    def _load(self) -> ModelMeta:  # pragma: no cover - built from the truth, not a file
        raise NotImplementedError

    def expect(self, grid: TileGrid) -> None:
        self._tiles, self._cursor = list(grid), 0

    def finish(self) -> None:
        if self._cursor != len(self._tiles):
            raise RuntimeError(f"oracle served {self._cursor} tiles of a {len(self._tiles)}-tile grid")

    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._cursor + len(batch) > len(self._tiles):
            raise RuntimeError("oracle: more tiles than the expected grid (call expect() with the counter's grid)")
        tiles = self._tiles[self._cursor:self._cursor + len(batch)]
        self._cursor += len(batch)
        per_tile = [self._visible(t) for t in tiles]
        slots = max(1, max(len(b) for b, _ in per_tile))
        boxes = np.zeros((len(batch), slots, 4), np.float32)
        scores = np.zeros((len(batch), slots, len(self.truth.class_names)), np.float32)
        for i, (b, s) in enumerate(per_tile):
            boxes[i, :len(b)] = b
            scores[i, :len(b)] = s
        return boxes, scores

    def _visible(self, tile) -> tuple[np.ndarray, np.ndarray]:
        gt = self.truth.xyxy
        clipped = np.clip(gt, [tile.x0, tile.y0, tile.x0, tile.y0], [tile.x1, tile.y1, tile.x1, tile.y1])
        area = np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0, None), axis=1)
        visible = area / np.maximum(self._areas, 1e-9)
        keep = np.flatnonzero(visible >= self.min_visible)
        whole = visible[keep] >= 1.0 - 1e-6
        score = np.where(whole, 0.9, 0.55 + 0.3 * visible[keep]).astype(np.float32)
        scores = np.zeros((len(keep), len(self.truth.class_names)), np.float32)
        scores[np.arange(len(keep)), self.truth.class_ids[keep]] = score
        return clipped[keep] - np.array([tile.x0, tile.y0, tile.x0, tile.y0], np.float32), scores
