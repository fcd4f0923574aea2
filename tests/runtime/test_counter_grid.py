"""Counter's grid offset: moving the seams changes the tiles, never the count."""
import pytest

from bcedge.runtime.counter import Counter
from bcedge.runtime.tiling import TileGrid

from test_counter import ComponentsBackend, _meta, _smear  # noqa: E402


def test_plan_is_the_grid_count_uses_and_follows_the_offset():
    counter = Counter(ComponentsBackend(_meta()), overlap=24, grid_offset=(17, 5))
    grid = counter.plan(300, 220)
    assert grid.offset == (17, 5)
    assert grid.xs == TileGrid.plan(300, 220, 64, 64, 24, offset=(17, 5)).xs
    assert grid.xs != Counter(ComponentsBackend(_meta()), overlap=24).plan(300, 220).xs
    image, _ = _smear()
    assert counter.count(image).tiles == len(grid)


@pytest.mark.parametrize("offset", [(0, 0), (7, 31), (39, 2), (20, 20)])
def test_count_does_not_move_with_the_grid(offset):
    image, truth = _smear(seed=2)
    result = Counter(ComponentsBackend(_meta()), overlap=26, grid_offset=offset).count(image)
    assert result.counts == truth


@pytest.mark.parametrize("merge", ["core", "core+ios", "nms", "greedy_nmm"])
def test_warmup_runs_decode_and_merge_and_changes_no_result(merge):
    image, _ = _smear(seed=4)
    cold = Counter(ComponentsBackend(_meta()), overlap=24, batch_size=2, merge=merge).count(image)
    warm = Counter(ComponentsBackend(_meta()), overlap=24, batch_size=2, merge=merge)
    warm.warmup()
    again = warm.count(image)
    assert again.counts == cold.counts and again.total > 0
