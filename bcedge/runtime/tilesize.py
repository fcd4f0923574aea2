"""Tile size per image, for models whose graph takes any size (``ModelMeta.dynamic_input``).

An image that fits one tile is one exact tile (its size rounded up to the stride). A larger one
gets the square tile that minimises the predicted time: tiles x (fixed cost + cost per pixel).
Larger tiles waste less on overlap, smaller ones less on the last row and column; the per-tile
fixed cost (launch, decode, NMS) favours large tiles. ``TileCost`` is measured per machine
(``benchmarks/tile_cost.py``) and stored in the artifact (``ModelMeta.tile_cost``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

MAX_SIDE = 1024          # largest tile by default: a batch of 4 is ~50 MB of float32 input
MIN_SIDE = 256


@dataclass(frozen=True)
class TileCost:
    fixed_ms: float = 2.0          # per tile, whatever its size
    ms_per_mpx: float = 40.0       # per megapixel of tile

    @classmethod
    def from_meta(cls, data: dict | None) -> "TileCost":
        return cls(**{k: float(v) for k, v in (data or {}).items() if k in ("fixed_ms", "ms_per_mpx")})

    def predict_ms(self, tile_w: int, tile_h: int, tiles: int) -> float:
        return tiles * (self.fixed_ms + self.ms_per_mpx * tile_w * tile_h / 1e6)


def round_up(value: int, stride: int) -> int:
    return max(stride, int(math.ceil(value / stride)) * stride)


def tiles_along(length: int, tile: int, overlap: int) -> int:
    return 1 if length <= tile else int(math.ceil((length - overlap) / (tile - overlap)))


def choose_tile(width: int, height: int, overlap: int, stride: int = 32, cost: TileCost = TileCost(),
                max_side: int = MAX_SIDE) -> tuple[int, int]:
    """The tile (w, h) for a ``width x height`` image (model pixels); sides are multiples of ``stride``."""
    max_side = max(stride, max_side // stride * stride)   # the largest allowed side that is a multiple of the stride
    if width <= max_side and height <= max_side:
        return round_up(width, stride), round_up(height, stride)
    best = None
    for side in range(max(MIN_SIDE, round_up(overlap + stride, stride)), max_side + 1, stride):
        tile_w, tile_h = min(side, round_up(width, stride)), min(side, round_up(height, stride))
        if (width > tile_w and tile_w <= overlap) or (height > tile_h and tile_h <= overlap):
            continue   # tiles overlap only along a side the image is cut along: a strip's one row of tiles needs none
        tiles = tiles_along(width, tile_w, overlap) * tiles_along(height, tile_h, overlap)
        predicted = cost.predict_ms(tile_w, tile_h, tiles)
        if best is None or predicted < best[0] - 1e-9:
            best = (predicted, (tile_w, tile_h))
    if best is None:
        raise ValueError(f"no tile up to {max_side} px leaves a core with an overlap of {overlap} px")
    return best[1]
