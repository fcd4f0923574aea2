"""Containment suppression (one box per cell), per-image tile sizes and band-wise resampling."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bcedge.detections import Detections
from bcedge.runtime.containment import ContainmentRule, rules_from_meta, suppress_contained
from bcedge.runtime.resample import CropSource, ResampledSource, central_window
from bcedge.runtime.sources import ArraySource
from bcedge.runtime.tilesize import TileCost, choose_tile, tiles_along

NAMES = ["RBC", "WBC", "Platelets"]


def dets(rows):
    rows = np.array(rows, np.float32)
    return Detections(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64))


def test_a_lobe_inside_a_white_cell_is_dropped_and_a_platelet_beside_it_kept():
    found = dets([[100, 100, 200, 200, 0.9, 1],     # white cell
                  [120, 120, 150, 150, 0.8, 2],     # platelet on a lobe, inside
                  [210, 100, 230, 120, 0.8, 2],     # platelet beside the cell
                  [110, 110, 180, 170, 0.7, 1],     # a lobe boxed as a second white cell
                  [0, 0, 60, 60, 0.9, 0]])
    rules = [ContainmentRule("Platelets", "WBC", 0.75), ContainmentRule("WBC", "WBC", 0.75)]
    kept = suppress_contained(found, NAMES, rules)
    assert sorted(kept.counts(NAMES).items()) == [("Platelets", 1), ("RBC", 1), ("WBC", 1)]
    assert kept.xyxy[kept.class_ids == 2][0][0] == 210 and kept.xyxy[kept.class_ids == 1][0][2] == 200
    assert len(suppress_contained(found, NAMES, [])) == 5


def test_two_equal_white_cells_never_suppress_each_other():
    twins = dets([[0, 0, 100, 100, 0.9, 1], [0, 0, 100, 100, 0.8, 1]])
    assert len(suppress_contained(twins, NAMES, [ContainmentRule("WBC", "WBC", 0.5)])) == 2


def test_rules_for_classes_the_model_lacks_are_ignored():
    rules = rules_from_meta([{"inner": "Platelets", "outer": "WBC", "min_containment": 0.8},
                             {"inner": "Ring", "outer": "WBC", "min_containment": 0.8}], NAMES)
    assert rules == [ContainmentRule("Platelets", "WBC", 0.8)]


def test_an_image_that_fits_is_one_exact_tile_rounded_to_the_stride():
    assert choose_tile(345, 259, overlap=140) == (352, 288)
    assert choose_tile(64, 1000, overlap=140, max_side=1024) == (64, 1024)


def test_a_strip_narrower_than_the_overlap_is_one_row_of_tiles():
    """A long, thin image (a slide's scan line, a cropped strip): no seam runs along it, so its short side needs
    no overlap; the tiles overlap along its length only, and each cell lies whole in some tile."""
    from bcedge.runtime.tiling import TileGrid

    for width, height in ((6400, 64), (64, 6400), (1100, 100)):
        tile_w, tile_h = choose_tile(width, height, overlap=140)
        grid = TileGrid.plan(width, height, tile_w, tile_h, 140)
        assert (grid.n_rows if width > height else grid.n_cols) == 1
        along = grid.xs if width > height else grid.ys
        side = tile_w if width > height else tile_h
        assert all(b - a <= side - 140 for a, b in zip(along[:-1], along[1:]))          # overlaps of >= 140 px
        assert max(along) + side >= max(width, height)                                  # the whole length covered
    with pytest.raises(ValueError, match="tiles would not advance"):
        TileGrid.plan(1000, 1000, 128, 128, 140)


def test_large_images_get_the_cheapest_tile_for_the_cost_model():
    flat = TileCost(fixed_ms=0.0, ms_per_mpx=100.0)          # only pixels count: overlap waste decides
    costly_launch = TileCost(fixed_ms=500.0, ms_per_mpx=1.0)  # a big per-tile cost: fewest tiles win
    width, height = 4096, 3072
    tile_flat = choose_tile(width, height, 140, cost=flat)
    tile_launch = choose_tile(width, height, 140, cost=costly_launch)
    assert all(v % 32 == 0 and v <= 1024 for v in tile_flat + tile_launch)
    count = lambda t: tiles_along(width, t[0], 140) * tiles_along(height, t[1], 140)  # noqa: E731
    assert count(tile_launch) <= count(tile_flat)
    for tile, cost in ((tile_flat, flat), (tile_launch, costly_launch)):
        best = cost.predict_ms(*tile, count(tile))
        for side in range(256, 1025, 32):
            other = (side, side)
            assert best <= cost.predict_ms(*other, count(other)) + 1e-6


def test_resampled_bands_match_a_whole_resize():
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur((rng.random((301, 413, 3)) * 255).astype(np.uint8), (0, 0), 3)
    for factor in (0.31, 0.54, 1.7):   # area averaging below half size, bilinear above (resample_interpolation)
        source = ResampledSource(ArraySource(image), factor)
        whole = cv2.resize(image, (source.width, source.height),
                           interpolation=cv2.INTER_AREA if factor < 0.5 else cv2.INTER_LINEAR)
        bands = np.concatenate([source.read_rows(y, min(y + 37, source.height)) for y in range(0, source.height, 37)])
        assert bands.shape == whole.shape
        assert np.abs(bands.astype(int) - whole).mean() < 1.5


def test_crop_source_reads_the_window():
    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    window = central_window(30, 20, 10)
    assert window == (10, 5, 20, 15)
    crop = CropSource(ArraySource(image), *window)
    np.testing.assert_array_equal(crop.read_rows(0, 10), image[5:15, 10:20])


def test_only_a_box_that_counts_suppresses_what_lies_inside_it():
    faint_outer = dets([[100, 100, 200, 200, 0.05, 1],   # a faint white-cell box, below its threshold
                        [120, 120, 150, 150, 0.8, 2]])   # a confident platelet inside it
    rules = [ContainmentRule("Platelets", "WBC", 0.75)]
    thresholds = np.array([0.5, 0.5, 0.5], np.float32)
    assert len(suppress_contained(faint_outer, NAMES, rules, thresholds)) == 2
    assert len(suppress_contained(faint_outer, NAMES, rules)) == 1
