"""Timing policy, percentiles and outliers: a fake clock makes every number exact."""
from __future__ import annotations

import numpy as np
import pytest

from bcedge.bench.timing import Timing, TimingPolicy, measure, outliers, summarize


class FakeClock:
    """Advances only when ``fn`` or ``sync`` says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fixed_iterations_and_warmup_are_kept_apart():
    clock = FakeClock()
    durations = iter([5.0, 5.0] + [1.0] * 100)

    def fn():
        clock.now += next(durations)

    timing = measure(fn, TimingPolicy(warmup=2, min_iterations=4, min_time_s=0.0), clock=clock)
    assert timing.warmup_samples_s == [5.0, 5.0]
    assert timing.samples_s == [1.0] * 4


def test_minimum_time_extends_past_min_iterations_and_max_time_stops():
    clock = FakeClock()

    def fn():
        clock.now += 0.125      # exact in binary: no rounding at the limits

    timing = measure(fn, TimingPolicy(warmup=0, min_iterations=2, min_time_s=1.0), clock=clock)
    assert len(timing.samples_s) == 8            # 8 x 0.125 s reaches the minimum time
    capped = measure(fn, TimingPolicy(warmup=0, min_iterations=50, min_time_s=0.0, max_time_s=0.5), clock=clock)
    assert len(capped.samples_s) == 4            # the time cap wins over min_iterations


def test_sync_is_inside_the_timed_span():
    clock = FakeClock()
    calls = []

    def fn():
        clock.now += 0.001      # an asynchronous launch returns at once

    def sync():
        calls.append(1)
        clock.now += 0.009      # the device finishes later

    timing = measure(fn, TimingPolicy(warmup=1, min_iterations=3, min_time_s=0.0), sync=sync, clock=clock)
    assert len(calls) == 4
    assert timing.samples_s == pytest.approx([0.010] * 3)


def test_summary_percentiles_and_per_tile_scaling():
    samples = [float(v) for v in range(1, 101)]       # seconds
    stats = summarize(samples, scale=1.0)
    assert stats["n"] == 100 and stats["p50_ms"] == pytest.approx(50.5)
    assert stats["p95_ms"] == pytest.approx(np.percentile(samples, 95))
    assert stats["p99_ms"] == pytest.approx(np.percentile(samples, 99))
    assert stats["min_ms"] == 1 and stats["max_ms"] == 100 and stats["outliers"]["count"] == 0
    per_tile = Timing(samples_s=[0.4, 0.4, 0.4]).summary(per=4)
    assert per_tile["mean_ms"] == pytest.approx(100.0)


def test_outliers_are_reported_not_dropped():
    samples = [0.010] * 20 + [0.100]       # one slow call (a page fault, a neighbour)
    stats = summarize(samples)
    assert stats["outliers"]["count"] == 1 and stats["outliers"]["slow"] == 1
    assert stats["outliers"]["indices"] == [20] and stats["outliers"]["values_ms"] == [100.0]
    assert stats["max_ms"] == 100.0                       # still in the statistics
    assert stats["mean_ms"] == pytest.approx((0.010 * 20 + 0.1) / 21 * 1e3, abs=1e-3)
    assert len(outliers(np.array([1.0, 2.0, 100.0]))) == 0    # too few samples to judge


def test_bad_policy_and_empty_samples_are_refused():
    with pytest.raises(ValueError, match="min_iterations"):
        TimingPolicy(min_iterations=0)
    with pytest.raises(ValueError, match="no timing samples"):
        summarize([])
