"""Bands of a huge image, counted apart and merged on the driver, give the local count (no Ray needed:
workers run in this process)."""
import itertools

import numpy as np
import pytest
import tifffile

from bcedge.cluster.banded_counter import BandedCounter, MetaOnly
from bcedge.cluster.bands import (
    GridRange,
    band_view,
    count_band,
    split_bands,
    view_region,
)
from bcedge.cluster.jobs import BandJob
from bcedge.cluster.worker import CounterSpec, CountWorker
from bcedge.data.appearance import round_field, vignetted
from bcedge.data.synth import generate_smear
from bcedge.runtime.corrections import Corrections
from bcedge.runtime.counter import Counter
from bcedge.runtime.scale import History
from bcedge.runtime.sources import open_image
from bcedge.runtime.tiling import TileGrid

OPTIONS = {"tile": (256, 256), "batch_size": 3}


@pytest.mark.parametrize("tiles,columns,batch,target", [(100, 10, 4, 25), (143, 13, 3, 20), (7, 7, 4, 2), (12, 4, 1, 1)])
def test_bands_cover_the_grid_once_and_start_on_whole_batches(tiles, columns, batch, target):
    bands = split_bands(tiles, columns, batch, target)
    assert bands[0][0] == 0 and bands[-1][1] == tiles
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bands))
    assert all(t0 < t1 and t0 % batch == 0 for t0, t1 in bands)
    if columns % batch == 0:   # then every band starts a row of tiles
        assert all(t0 % columns == 0 for t0, _ in bands)


def test_a_range_of_the_grid_holds_only_its_tiles_strip_by_strip():
    grid = TileGrid.plan(1000, 700, 256, 256, 40)
    strips = GridRange(grid, 3, 9).strips()
    assert [t.index for s in strips for t in s.tiles] == list(range(3, 9))
    assert all(s.y0 == grid.strips()[s.index].y0 for s in strips)


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    """A stripped BigTIFF smear larger than the auto scale's probe window (so three kinds of pass)."""
    path = tmp_path_factory.mktemp("bands") / "slide.tif"
    tifffile.imwrite(path, generate_smear(1200, 950, seed=4).pixels, bigtiff=True, rowsperstrip=64, photometric="rgb")
    return path


@pytest.fixture(scope="module")
def worker():
    return CountWorker(CounterSpec("default", options=OPTIONS))


def test_a_band_finds_on_each_of_its_tiles_what_the_local_counter_finds(slide, worker):
    local = Counter.load("default", cell_size=100, **OPTIONS)
    seen = {}
    local.add_tile_hook(lambda tile, dets: seen.__setitem__(tile.index, dets))
    factor = local.count_file(slide).scale.factor
    with open_image(slide) as src:
        view = band_view(src, None, factor)
        grid = local.plan(view.width, view.height)
    assert view_region(view) == (None, factor, 0.0, Corrections())
    outcome = count_band(worker.counter, BandJob(str(slide), None, factor, (3, 9), (grid.tile_w, grid.tile_h, len(grid))))
    assert [index for index, _ in outcome.per_tile] == list(range(3, 9))
    for index, dets in outcome.per_tile:
        assert np.array_equal(dets.xyxy, seen[index].xyxy) and np.array_equal(dets.scores, seen[index].scores)
        assert np.array_equal(dets.class_ids, seen[index].class_ids)


def test_a_grid_the_worker_would_plan_otherwise_is_refused(slide, worker):
    job = BandJob(str(slide), None, 0.5, (0, 1), (256, 256, 999))
    assert "999 of 256x256" in str(worker.count_band(job).error)


# earlier images' scales, and whether they were of this frame size (another size also reads the thumbnail)
@pytest.mark.parametrize("look,histories", [("colour", [((), False), ((0.7,), True), ((0.7,), False)]),
                                            ("grey", [((), False)]), ("noisy", [((), False)]),
                                            ("dim corners", [((), False)]), ("round field", [((), False)])])
def test_counting_in_bands_gives_the_local_result_scale_estimate_included(tmp_path, slide, worker, look, histories):
    path, flags = slide, {"colour": [], "grey": ["greyscale"], "noisy": ["noisy"], "dim corners": ["uneven light"],
                   "round field": ["field stop"]}[look]
    if look == "grey":   # the reader's greyscale note must reach the driver's flags
        path = tmp_path / "grey.tif"
        tifffile.imwrite(path, tifffile.imread(slide)[..., 1], bigtiff=True, rowsperstrip=64)
    if look == "noisy":   # the driver's smoothing decision must reach the workers
        path, pixels = tmp_path / "noisy.tif", tifffile.imread(slide)
        grain = np.random.default_rng(0).normal(0, 15, pixels.shape)
        tifffile.imwrite(path, np.clip(pixels + grain, 0, 255).astype(np.uint8), bigtiff=True, rowsperstrip=64,
                         photometric="rgb")
    if look == "dim corners":   # the driver's lamp must reach the workers
        path = tmp_path / "dim.tif"
        tifffile.imwrite(path, vignetted(tifffile.imread(slide), 0.4), bigtiff=True, rowsperstrip=64, photometric="rgb")
    if look == "round field":   # the driver's field stop must reach the workers
        path = tmp_path / "round.tif"
        tifffile.imwrite(path, round_field(tifffile.imread(slide)), bigtiff=True, rowsperstrip=64, photometric="rgb")
    local = Counter.load("default", **OPTIONS)
    sent = []

    def send(jobs):
        sent.extend(jobs)
        return [lambda job=job: worker.count_band(job) for job in jobs]

    banded = BandedCounter(MetaOnly(worker.counter.meta, "workers"), send, workers=2, **OPTIONS)
    with open_image(path) as image:
        frame = (image.width, image.height)
    for factors, same_frame in histories:   # what earlier images left the counter with changes the guess
        history = History(factors, frame if same_frame else (frame[0] + 1, frame[1]))
        local.scale_history = history
        expected = local.count_file(path)
        got = banded.count_path(str(path), history)
        assert np.array_equal(got.detections.xyxy, expected.detections.xyxy)
        assert np.array_equal(got.detections.scores, expected.detections.scores)
        assert got.counts == expected.counts and got.scale == expected.scale and got.tiles == expected.tiles
        assert got.flags == expected.flags == flags
    assert any(job.smooth > 0 for job in sent) == (look == "noisy")   # the workers were told to blur
    assert any(job.corrections.lamp for job in sent) == (look == "dim corners")    # ... to even the lamp
    assert any(job.corrections.field_stop for job in sent) == (look == "round field")   # ... to fill the surround
    assert any(job.window for job in sent)                       # the probe pass went out as a window
    assert len({job.tiles for job in sent if not job.window}) > 2   # the full passes in several bands
