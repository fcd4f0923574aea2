"""The shared test doubles: the ground-truth oracle counts exactly the truth whatever the grid, and the
tile recorder finds the tile of every merged detection through the counter's tile hook."""
import numpy as np
import pytest

from bcedge.runtime.counter import Counter
from bcedge.testing.oracle import OracleBackend, Truth
from bcedge.testing.recorder import TileRecorder


def _truth(width=400, height=300, cells=60, seed=0) -> Truth:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, [width - 20, height - 20], (cells, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(8, 20, (cells, 2))], 1).astype(np.float32)
    return Truth(boxes, rng.integers(0, 2, cells), ["RBC", "WBC"])


@pytest.mark.parametrize("offset", [(0, 0), (23, 41)])
def test_the_oracle_counts_the_truth_and_the_recorder_finds_every_tile(offset):
    truth = _truth()
    counter = Counter(OracleBackend(truth, (128, 128)), grid_offset=offset)
    grid = counter.plan(400, 300)
    counter.backend.expect(grid)
    recorder = TileRecorder(counter)
    result = counter.count(np.zeros((300, 400, 3), np.uint8))
    counter.backend.finish()
    assert result.counts == truth.counts and result.tiles == len(grid) > 4
    sources = recorder.sources(result.detections, grid)
    assert len(sources) == len(result.detections) and (sources >= 0).all()
    recorder.close()   # the hook is gone: counting again records nothing
    counter.backend.expect(grid)
    counter.count(np.zeros((300, 400, 3), np.uint8))
    assert len(recorder.per_tile) == len(grid)


def test_the_oracle_refuses_tiles_outside_the_expected_grid():
    truth = _truth()
    counter = Counter(OracleBackend(truth, (128, 128)))
    counter.backend.expect(counter.plan(200, 150))
    with pytest.raises(RuntimeError, match="more tiles than the expected grid"):
        counter.count(np.zeros((300, 400, 3), np.uint8))
    recorder = TileRecorder(counter)
    counter.backend.expect(counter.plan(10, 10))
    small = counter.count(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(RuntimeError, match="recorded 1 tiles of a 12-tile grid"):
        recorder.sources(small.detections, counter.plan(400, 300))
