"""Merging tile detections: with a perfect detector every cell counts exactly once, whatever the grid."""
import numpy as np
import pytest

from bcedge.detections import Detections
from bcedge.runtime.merge import MergeParams, merge_detections, merge_tiles, strategy_names
from bcedge.runtime.tiling import TileGrid


def make_cells(seed: int, width: int, height: int, n: int, d_min: int, d_max: int, max_iou: float = 0.0):
    """Integer cell boxes, pairwise IoU <= max_iou (0: not overlapping), with 3 classes."""
    rng = np.random.default_rng(seed)
    boxes: list[list[int]] = []
    for _ in range(n * 20):
        if len(boxes) == n:
            break
        w, h = rng.integers(d_min, d_max + 1, 2)
        x, y = rng.integers(0, width - w + 1), rng.integers(0, height - h + 1)
        cand = np.array([x, y, x + w, y + h])
        if boxes:
            b = np.array(boxes)
            iw = np.clip(np.minimum(b[:, 2], cand[2]) - np.maximum(b[:, 0], cand[0]), 0, None)
            ih = np.clip(np.minimum(b[:, 3], cand[3]) - np.maximum(b[:, 1], cand[1]), 0, None)
            inter = iw * ih
            union = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) + w * h - inter
            if (inter / union > max_iou).any() or (max_iou == 0 and inter.any()):
                continue
        boxes.append(cand.tolist())
    boxes = np.array(boxes, np.float32)
    return Detections(boxes, np.full(len(boxes), 0.9), rng.integers(0, 3, len(boxes)))


def perfect_detector(tile, cells: Detections, rng, jitter: float = 0.0) -> Detections:
    """Whole cells inside the tile get their exact box; cells cut by the tile border a clipped box, lower score."""
    b = cells.xyxy
    clipped = np.stack([np.maximum(b[:, 0], tile.x0), np.maximum(b[:, 1], tile.y0),
                        np.minimum(b[:, 2], tile.x1), np.minimum(b[:, 3], tile.y1)], 1)
    visible = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    whole = visible & (clipped == b).all(1)
    scores = np.where(whole, 0.9 - rng.random(len(b)) * 0.05, 0.3 + rng.random(len(b)) * 0.2)
    clipped = clipped + np.where(whole[:, None], rng.uniform(-jitter, jitter, b.shape), 0).astype(np.float32)
    return Detections(clipped[visible], scores[visible], cells.class_ids[visible]).shift(-tile.x0, -tile.y0)


def run_tiles(cells, width, height, tile, overlap, offset=(0, 0), seed=0, jitter=0.0):
    rng = np.random.default_rng(seed)
    grid = TileGrid.plan(width, height, tile, tile, overlap, offset)
    return [(t, perfect_detector(t, cells, rng, jitter)) for t in grid]


def _sorted_rows(d: Detections) -> np.ndarray:
    rows = np.concatenate([d.xyxy, d.class_ids[:, None].astype(np.float32)], 1)
    return rows[np.lexsort(rows.T[::-1])]


GRIDS = [(128, 40, (0, 0)), (128, 40, (37, 91)), (200, 48, (5, 0)), (96, 36, (60, 13)), (512, 40, (0, 0))]


@pytest.mark.parametrize("strategy", ["core", "core+ios", "greedy_nmm"])
@pytest.mark.parametrize("tile,overlap,offset", GRIDS)
def test_every_cell_counted_once_whatever_the_grid(strategy, tile, overlap, offset):
    cells = make_cells(0, 700, 500, 220, 12, 36)
    per_tile = run_tiles(cells, 700, 500, tile, overlap, offset)
    raw = sum(len(d) for _, d in per_tile)
    merged = merge_tiles(per_tile, MergeParams(strategy, nms_backend="numba"))
    if tile < 700:
        assert raw > len(cells) * 1.1  # the seams really do duplicate cells
    np.testing.assert_array_equal(_sorted_rows(merged), _sorted_rows(cells))
    assert merged.counts(["a", "b", "c"]) == cells.counts(["a", "b", "c"])


@pytest.mark.parametrize("tile,overlap,offset", GRIDS[:3])
def test_core_keeps_overlapping_cells_that_greedy_nmm_merges(tile, overlap, offset):
    cells = make_cells(1, 600, 600, 400, 14, 36, max_iou=0.3)  # clumps: cells overlap up to IoU 0.3
    per_tile = run_tiles(cells, 600, 600, tile, overlap, offset, seed=1)
    core = merge_tiles(per_tile, MergeParams("core", iou=0.5))
    np.testing.assert_array_equal(_sorted_rows(core), _sorted_rows(cells))
    assert len(merge_tiles(per_tile, MergeParams("greedy_nmm"))) < len(cells)  # IoS merges distinct clumped cells


@pytest.mark.parametrize("strategy", ["core", "core+ios"])
def test_box_jitter_at_core_boundaries_loses_no_cell(strategy):
    # cells seen whole by two tiles, centred within a pixel of the boundary: each tile's jittered box
    # may put the centre in the other's core; the tolerance keeps both and NMS removes one
    cells = make_cells(4, 900, 900, 1500, 8, 20)
    names = ["a", "b", "c"]
    per_tile = run_tiles(cells, 900, 900, 64, 22, seed=4, jitter=1.0)
    assert merge_tiles(per_tile, MergeParams(strategy)).counts(names) == cells.counts(names)
    assert len(merge_tiles(per_tile, MergeParams(strategy, tolerance=0))) < len(cells)  # what the tolerance is for


def test_plain_nms_double_counts_cut_cells():
    cells = make_cells(2, 700, 500, 220, 12, 36)
    per_tile = run_tiles(cells, 700, 500, 128, 40)
    assert len(merge_tiles(per_tile, MergeParams("nms", iou=0.5))) > len(cells)


def test_core_ios_merges_seam_leftovers_from_other_tiles_only():
    grid = TileGrid.plan(200, 100, 120, 100, 40)  # tiles [0, 120) and [80, 200), cores split at x = 100
    left, right = grid[0], grid[1]
    whole = Detections([[76, 10, 104, 30]], [0.9], [0])  # centre 90: left core, seen whole by the left tile
    # an imperfect detector in the right tile stretches the cut cell so its centre (101) lands in its core
    stretched = Detections([[88, 12, 114, 28]], [0.6], [0])  # IoU 0.36 with the whole box, IoS 0.62
    nested = Detections([[20, 10, 50, 40], [22, 12, 38, 28]], [0.8, 0.7], [1, 1])  # same tile: kept apart
    per_tile = [(left, Detections.concat([whole, nested]).shift(-left.x0, 0)), (right, stretched.shift(-right.x0, 0))]
    assert len(merge_tiles(per_tile, MergeParams("core"))) == 4
    merged = merge_tiles(per_tile, MergeParams("core+ios", ios=0.5))
    assert len(merged) == 3
    assert merged.xyxy[0].tolist() == [76, 10, 114, 30]  # union with the stretched box, best score kept
    assert merged.scores[0] == pytest.approx(0.9)
    assert len(merge_tiles(per_tile, MergeParams("greedy_nmm", ios=0.5))) == 2  # SAHI-style also merges the nested pair


def test_merge_detections_takes_image_coordinates_and_checks_input():
    grid = TileGrid.plan(300, 300, 128, 128, 32)
    cells = make_cells(3, 300, 300, 40, 10, 30)
    per_tile = run_tiles(cells, 300, 300, 128, 32)
    dets = Detections.concat(d.shift(t.x0, t.y0) for t, d in per_tile)
    ids = np.repeat(np.arange(len(per_tile)), [len(d) for _, d in per_tile])
    merged = merge_detections(dets, ids, list(grid), MergeParams("core"))
    np.testing.assert_array_equal(_sorted_rows(merged), _sorted_rows(cells))
    assert np.all(np.diff(merged.scores) <= 0)  # highest score first
    with pytest.raises(ValueError, match="unknown merge strategy 'x'"):
        merge_detections(dets, ids, list(grid), MergeParams("x"))
    with pytest.raises(ValueError, match="tile ids"):
        merge_detections(dets, ids[:-1], list(grid))
    with pytest.raises(ValueError, match="tile ids must index"):
        merge_detections(dets, ids + 100, list(grid))
    assert len(merge_tiles([(t, Detections.empty()) for t in grid])) == 0
    assert set(strategy_names()) >= {"core", "core+ios", "nms", "greedy_nmm"}


def test_padded_single_tile_clips_to_the_image():
    grid = TileGrid.plan(50, 40, 64, 64, 8)
    dets = Detections([[40, 30, 60, 50], [5, 5, 15, 15]], [0.9, 0.8], [0, 0])
    merged = merge_tiles([(grid[0], dets)])
    assert merged.xyxy.tolist() == [[40, 30, 50, 40], [5, 5, 15, 15]]


def test_merge_params_are_checked_when_made():
    with pytest.raises(ValueError, match="unknown merge strategy 'x'"):
        MergeParams("x")
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        MergeParams(tolerance=-1)
    assert MergeParams() == MergeParams("core", iou=0.5, ios=0.5, nms_backend="auto", tolerance=2.0)
