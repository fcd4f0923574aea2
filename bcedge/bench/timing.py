"""Timing with warm-up, a fixed iteration count or a minimum time, percentiles, and outliers reported.

    policy = TimingPolicy(warmup=3, min_iterations=10, min_time_s=2.0)
    timing = measure(lambda: backend.infer(batch), policy, sync=None)
    timing.summary(per=4)      # {"mean_ms": ..., "p50_ms": ..., "outliers": {...}} per tile of a batch of 4

Every sample is kept and every statistic is computed over all of them: outliers (Tukey's fences,
1.5 IQR beyond the quartiles) are listed with their positions, never dropped, so a noisy neighbour
or a clock-frequency change shows in the result instead of vanishing from it.

``sync`` is called after each call, inside the timed interval, for backends whose call returns before
the device has finished (a CUDA stream). Backends that hand back host arrays have already synchronised.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

OUTLIER_IQR = 1.5
MAX_LISTED_OUTLIERS = 20


@dataclass(frozen=True)
class TimingPolicy:
    """When to stop: after ``min_iterations`` AND ``min_time_s``, or at ``max_iterations`` / ``max_time_s``.

    ``min_time_s=0`` gives a fixed iteration count. Warm-up runs ``warmup`` calls and, if
    ``warmup_s`` is set, keeps going until that much time has passed.
    """

    warmup: int = 3
    warmup_s: float = 0.0
    min_iterations: int = 10
    min_time_s: float = 2.0
    max_iterations: int = 10_000
    max_time_s: float = 60.0

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_iterations < 1 or self.max_iterations < self.min_iterations:
            raise ValueError(f"bad timing policy {self}: need warmup >= 0 and 1 <= min_iterations <= max_iterations")
        if self.min_time_s < 0 or self.max_time_s <= 0 or self.warmup_s < 0:
            raise ValueError(f"bad timing policy {self}: times must be non-negative (max_time_s positive)")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Timing:
    """Seconds of every timed call (in order) and of the warm-up calls."""

    samples_s: list[float] = field(default_factory=list)
    warmup_samples_s: list[float] = field(default_factory=list)

    def summary(self, per: int = 1) -> dict:
        """Statistics in ms, divided by ``per`` (e.g. the batch size, for time per tile)."""
        warmup = [round(s * 1e3 / per, 3) for s in self.warmup_samples_s]
        return summarize(self.samples_s, scale=1e3 / per) | {"warmup_ms": warmup}


def outliers(values: np.ndarray, k: float = OUTLIER_IQR) -> np.ndarray:
    """Indices of values outside [Q1 - k IQR, Q3 + k IQR] (Tukey's fences); none below 4 samples."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 4:
        return np.zeros(0, dtype=np.int64)
    q1, q3 = np.percentile(values, [25, 75])
    spread = q3 - q1
    return np.flatnonzero((values < q1 - k * spread) | (values > q3 + k * spread))


def summarize(samples: list[float] | np.ndarray, scale: float = 1e3) -> dict:
    """n, mean, std, min, p50, p95, p99, max (each times ``scale``, default s -> ms) and the outliers."""
    values = np.asarray(samples, dtype=np.float64) * scale
    if len(values) == 0:
        raise ValueError("no timing samples to summarise")
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    out = outliers(values)
    slow = int(np.sum(values[out] > p50))
    return {
        "n": int(len(values)), "mean_ms": _r(values.mean()), "std_ms": _r(values.std(ddof=1) if len(values) > 1 else 0.0),
        "min_ms": _r(values.min()), "p50_ms": _r(p50), "p95_ms": _r(p95), "p99_ms": _r(p99), "max_ms": _r(values.max()),
        "outliers": {"rule": f"Tukey fences, {OUTLIER_IQR} IQR", "count": int(len(out)), "slow": slow,
                     "fast": int(len(out)) - slow, "indices": out[:MAX_LISTED_OUTLIERS].tolist(),
                     "values_ms": [_r(v) for v in values[out][:MAX_LISTED_OUTLIERS]]},
    }


def _r(value: float) -> float:
    return round(float(value), 3)


def measure(fn: Callable[[], object], policy: TimingPolicy = TimingPolicy(), sync: Callable[[], None] | None = None,
            clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Call ``fn`` per ``policy``; each sample spans the call and ``sync`` (when given)."""
    timing = Timing()

    def once() -> float:
        start = clock()
        fn()
        if sync is not None:
            sync()
        return clock() - start

    warm_start = clock()
    while len(timing.warmup_samples_s) < policy.warmup or (clock() - warm_start) < policy.warmup_s:
        timing.warmup_samples_s.append(once())
        if clock() - warm_start >= policy.max_time_s:
            break
    started = clock()
    while True:
        timing.samples_s.append(once())
        elapsed, n = clock() - started, len(timing.samples_s)
        if n >= policy.max_iterations or elapsed >= policy.max_time_s:
            break
        if n >= policy.min_iterations and elapsed >= policy.min_time_s:
            break
    return timing
