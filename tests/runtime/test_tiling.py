"""Tile grid geometry: cores partition the image, objects up to the overlap lie whole in their core's tile."""
import numpy as np
import pytest

from bcedge.runtime.tiling import TileGrid, choose_overlap


def _random_grids(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        tile_w, tile_h = int(rng.integers(8, 80)), int(rng.integers(8, 80))
        overlap = int(rng.integers(0, min(tile_w, tile_h)))
        w, h = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        offset = (int(rng.integers(0, 200)), int(rng.integers(0, 200)))
        yield TileGrid.plan(w, h, tile_w, tile_h, overlap, offset)


@pytest.mark.parametrize("seed", range(4))
def test_cores_partition_the_image_exactly(seed):
    for grid in _random_grids(seed, 40):
        cover = np.zeros((grid.image_h, grid.image_w), np.int32)
        for t in grid:
            cx0, cy0, cx1, cy1 = t.core
            assert t.x0 <= cx0 < cx1 <= t.x1 and t.y0 <= cy0 < cy1 <= t.y1, (grid, t)
            cover[cy0:cy1, cx0:cx1] += 1
        assert (cover == 1).all(), grid


@pytest.mark.parametrize("seed", range(3))
def test_tiles_are_full_size_inside_the_image_and_overlap_enough(seed):
    for grid in _random_grids(seed, 40):
        for t in grid:
            assert t.width == grid.tile_w and t.height == grid.tile_h
            assert 0 <= t.x0 and t.x1 <= grid.image_w and 0 <= t.y0 and t.y1 <= grid.image_h
            assert t.pad_x == max(grid.tile_w - grid.image_w, 0) and t.pad_y == max(grid.tile_h - grid.image_h, 0)
        for pos, tile in ((grid.xs, grid.tile_w), (grid.ys, grid.tile_h)):
            assert pos[0] == 0 and list(pos) == sorted(set(pos))
            assert all(a + tile - b >= grid.overlap for a, b in zip(pos[:-1], pos[1:]))


@pytest.mark.parametrize("seed", range(3))
def test_object_up_to_overlap_lies_whole_in_the_tile_of_its_core(seed):
    rng = np.random.default_rng(100 + seed)
    for grid in _random_grids(seed, 30):
        if grid.overlap == 0:
            continue
        size = rng.integers(1, grid.overlap + 1, size=(200, 2))
        x0 = rng.integers(0, np.maximum(grid.image_w - size[:, 0], 0) + 1)
        y0 = rng.integers(0, np.maximum(grid.image_h - size[:, 1], 0) + 1)
        boxes = np.stack([x0, y0, np.minimum(x0 + size[:, 0], grid.image_w), np.minimum(y0 + size[:, 1], grid.image_h)], 1)
        centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
        owners = grid.core_index(centres)
        for box, owner in zip(boxes, owners):
            tile = grid[int(owner)]
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            assert tile.core[0] <= cx < tile.core[2] and tile.core[1] <= cy < tile.core[3]
            assert tile.contains_box(*box), (grid, tile, box)


def test_small_image_gives_one_padded_tile():
    grid = TileGrid.plan(100, 40, 256, 128, 32)
    assert len(grid) == 1
    t = grid[0]
    assert (t.x0, t.y0, t.x1, t.y1) == (0, 0, 100, 40)
    assert (t.pad_x, t.pad_y) == (156, 88) and t.core == (0, 0, 100, 40)


def test_last_column_is_shifted_back_not_shrunk():
    grid = TileGrid.plan(1000, 300, 256, 256, 32)
    assert grid.xs == (0, 224, 448, 672, 744) and grid.ys == (0, 44)
    assert all(t.pad_x == 0 and t.pad_y == 0 for t in grid)


def test_offset_shifts_the_grid():
    base = TileGrid.plan(1000, 1000, 256, 256, 32)
    moved = TileGrid.plan(1000, 1000, 256, 256, 32, offset=(100, 50))
    assert moved.xs[:3] == (0, 124, 348) and moved.ys[:3] == (0, 174, 398)
    assert moved.xs != base.xs


def test_strips_group_rows_of_tiles():
    grid = TileGrid.plan(900, 700, 256, 256, 40)
    strips = grid.strips()
    assert len(strips) == grid.n_rows and sum(len(s.tiles) for s in strips) == len(grid)
    for s in strips:
        assert all(t.y0 == s.y0 and t.y1 == s.y1 and t.row == s.index for t in s.tiles)
        assert [t.col for t in s.tiles] == list(range(grid.n_cols))


def test_choose_overlap_and_bad_arguments():
    assert choose_overlap(40.2, 256) == 43
    assert choose_overlap(40, (512, 256), margin=0) == 40
    assert choose_overlap(248, (640, 480)) == 250   # more than half the tile: costly, still exact
    with pytest.raises(ValueError, match="larger tiles"):
        choose_overlap(254, 256)
    with pytest.raises(ValueError, match="overlap"):
        TileGrid.plan(100, 100, 64, 64, 64)
    with pytest.raises(ValueError, match="image_w"):
        TileGrid.plan(0, 100, 64, 64, 8)
