"""Tile grid geometry: tile boxes, their cores, and strips of tiles. Pure geometry, no I/O.

Tiles overlap their neighbours by at least ``overlap`` pixels. The *core* of a tile is the tile
minus half of each overlap with a neighbour (sides on the image border keep their full extent), so
the cores partition the image: every pixel lies in exactly one core. The merge step keeps a
detection only from the tile whose core holds its centre; when ``overlap`` is at least the largest
object's diameter, that tile saw the object whole (see ``choose_overlap``).

Every tile is ``tile_w x tile_h``: the last row and column are shifted back to stay inside the
image rather than shrunk. Only an image smaller than a tile gives a tile that needs padding
(``Tile.pad_x``, ``Tile.pad_y``: pixels to add on the right and bottom).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np


def size_from_text(text: str) -> tuple[int, int]:
    """``"640x480"`` -> (640, 480): a tile or input size as the CLI and ``Counter(tile=...)`` take it."""
    sides = text.lower().split("x")
    if len(sides) != 2 or not all(side.strip().isdigit() for side in sides):
        raise ValueError(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}")
    return int(sides[0]), int(sides[1])


@dataclass(frozen=True)
class Tile:
    """One tile: the image region it reads, its core, and the padding up to the tile size.

    ``x0, y0, x1, y1`` is the region of the image the tile covers (image pixels, end exclusive);
    the tile's pixel (0, 0) is image pixel (x0, y0), so tile detections shift by ``(x0, y0)``.
    ``core`` is ``(x0, y0, x1, y1)`` of the part of the image this tile is responsible for.
    """

    index: int
    row: int
    col: int
    x0: int
    y0: int
    x1: int
    y1: int
    core: tuple[int, int, int, int]
    pad_x: int = 0
    pad_y: int = 0
    image_w: int = 0
    image_h: int = 0

    @property
    def offset(self) -> tuple[int, int]:
        return self.x0, self.y0

    @property
    def width(self) -> int:
        """Tile width including padding (always the planned tile width)."""
        return self.x1 - self.x0 + self.pad_x

    @property
    def height(self) -> int:
        return self.y1 - self.y0 + self.pad_y

    def contains_box(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        """Whether a box (image coordinates) lies whole inside the image region of this tile."""
        return self.x0 <= x0 and self.y0 <= y0 and x1 <= self.x1 and y1 <= self.y1


@dataclass(frozen=True)
class Strip:
    """One row of tiles: the image rows ``y0:y1`` a reader decodes once for all its tiles."""

    index: int
    y0: int
    y1: int
    pad_y: int
    tiles: tuple[Tile, ...]


@dataclass(frozen=True)
class TileGrid:
    """Tiles covering an image, row-major (``tiles[row * n_cols + col]``)."""

    image_w: int
    image_h: int
    tile_w: int
    tile_h: int
    overlap: int
    offset: tuple[int, int]
    xs: tuple[int, ...]
    ys: tuple[int, ...]
    tiles: tuple[Tile, ...] = field(repr=False)

    @classmethod
    def plan(
        cls,
        image_w: int,
        image_h: int,
        tile_w: int,
        tile_h: int,
        overlap: int,
        offset: tuple[int, int] = (0, 0),
    ) -> "TileGrid":
        """Lay tiles of ``tile_w x tile_h`` over the image, neighbours overlapping by >= ``overlap``.

        ``offset`` (dx, dy) shifts the regular grid (taken modulo the stride), to check that
        results do not depend on where the seams fall.
        """
        for name, value in (("image_w", image_w), ("image_h", image_h), ("tile_w", tile_w), ("tile_h", tile_h)):
            if int(value) != value or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if int(overlap) != overlap or overlap < 0:
            raise ValueError(f"overlap must be a non-negative integer, got {overlap!r}")
        if (image_w > tile_w and overlap >= tile_w) or (image_h > tile_h and overlap >= tile_h):
            raise ValueError(   # along a side one tile covers there is no seam, and no overlap is needed
                f"overlap {overlap} must be smaller than the tile ({tile_w}x{tile_h}): tiles would not advance"
            )
        image_w, image_h, tile_w, tile_h, overlap = map(int, (image_w, image_h, tile_w, tile_h, overlap))
        xs = _axis_positions(image_w, tile_w, overlap, int(offset[0]))
        ys = _axis_positions(image_h, tile_h, overlap, int(offset[1]))
        x_cores = _axis_cores(xs, image_w, tile_w)
        y_cores = _axis_cores(ys, image_h, tile_h)
        tiles = []
        for row, (y, (cy0, cy1)) in enumerate(zip(ys, y_cores)):
            for col, (x, (cx0, cx1)) in enumerate(zip(xs, x_cores)):
                x1, y1 = min(x + tile_w, image_w), min(y + tile_h, image_h)
                tiles.append(Tile(
                    index=len(tiles), row=row, col=col, x0=x, y0=y, x1=x1, y1=y1,
                    core=(cx0, cy0, cx1, cy1), pad_x=tile_w - (x1 - x), pad_y=tile_h - (y1 - y),
                    image_w=image_w, image_h=image_h,
                ))
        return cls(image_w, image_h, tile_w, tile_h, overlap, (int(offset[0]), int(offset[1])),
                   tuple(xs), tuple(ys), tuple(tiles))

    @property
    def n_rows(self) -> int:
        return len(self.ys)

    @property
    def n_cols(self) -> int:
        return len(self.xs)

    def __len__(self) -> int:
        return len(self.tiles)

    def __iter__(self) -> Iterator[Tile]:
        return iter(self.tiles)

    def __getitem__(self, index: int) -> Tile:
        return self.tiles[index]

    def strips(self) -> list[Strip]:
        """Tiles grouped by row, top to bottom, so a reader decodes each band of rows once."""
        out = []
        for row in range(self.n_rows):
            tiles = self.tiles[row * self.n_cols:(row + 1) * self.n_cols]
            first = tiles[0]
            out.append(Strip(row, first.y0, first.y1, first.pad_y, tuple(tiles)))
        return out

    def boxes(self) -> np.ndarray:
        """(T, 4) int64 image regions of all tiles, xyxy."""
        return np.array([(t.x0, t.y0, t.x1, t.y1) for t in self.tiles], dtype=np.int64).reshape(-1, 4)

    def cores(self) -> np.ndarray:
        """(T, 4) int64 cores of all tiles, xyxy."""
        return np.array([t.core for t in self.tiles], dtype=np.int64).reshape(-1, 4)

    def core_index(self, points: np.ndarray) -> np.ndarray:
        """Index of the tile whose core holds each (x, y) point; points outside the image clamp to the border tile."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        x_bounds = np.array([t.core[2] for t in self.tiles[:self.n_cols]][:-1], dtype=np.float64)
        y_bounds = np.array([self.tiles[r * self.n_cols].core[3] for r in range(self.n_rows)][:-1], dtype=np.float64)
        col = np.searchsorted(x_bounds, points[:, 0], side="right")
        row = np.searchsorted(y_bounds, points[:, 1], side="right")
        return row * self.n_cols + col


def choose_overlap(max_object_size: float, tile: int | tuple[int, int], margin: int = 2) -> int:
    """Smallest safe overlap for objects up to ``max_object_size`` pixels across, plus ``margin``.

    With ``overlap >= object size`` every object lies whole in the tile whose core holds its
    centre; ``margin`` absorbs detector boxes slightly larger than the object. That holds for any
    overlap smaller than the tile; the cost grows with it (each tile adds only its core,
    ``(tile_w - overlap) x (tile_h - overlap)`` pixels, to a large image). Raises ValueError when no
    core would be left.
    """
    if not math.isfinite(max_object_size) or max_object_size <= 0:
        raise ValueError(f"max_object_size must be a positive number of pixels, got {max_object_size!r}")
    tile_w, tile_h = (tile, tile) if isinstance(tile, (int, np.integer)) else tile
    overlap = int(math.ceil(max_object_size)) + int(margin)
    if overlap >= min(tile_w, tile_h):
        raise ValueError(
            f"objects up to {max_object_size:g} px need an overlap of {overlap} px, as much as tiles of "
            f"{tile_w}x{tile_h} hold: use a model with larger tiles (well over {overlap} px) or downscale the image"
        )
    return overlap


def _axis_positions(size: int, tile: int, overlap: int, offset: int) -> list[int]:
    """Tile starts along one axis: a regular grid of ``stride`` shifted by ``offset``, clamped inside."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    start = -(offset % stride)
    positions: list[int] = []
    raw = start
    while True:
        clamped = min(max(raw, 0), size - tile)
        if not positions or clamped > positions[-1]:
            positions.append(clamped)
        if raw + tile >= size:
            return positions
        raw += stride


def _axis_cores(positions: list[int], size: int, tile: int) -> list[tuple[int, int]]:
    """Split [0, size) at the middle of each overlap between neighbouring tiles."""
    bounds = [0]
    for a, b in zip(positions[:-1], positions[1:]):
        bounds.append((a + b + tile) // 2)  # middle of the overlap [b, a + tile)
    bounds.append(size)
    return list(zip(bounds[:-1], bounds[1:]))
