"""Timing several things side by side: round after round, each called once, in an order that rotates
every round, so a shared machine's slow drifts and bursts hit them all alike.

    runs = interleave({"a": fa, "b": fb}, rounds=30, warmup=3)
    runs.summary("a")              # bcedge.bench.timing.summarize of a's samples (ms)
    runs.speedup("b", "a")         # how many times faster a is than b: median over rounds of b/a

A ratio is taken per round (the two calls ran seconds apart) and its median is reported with the
10th-90th percentile range of the per-round ratios: on a busy machine that is steadier than a ratio
of two medians. The share of the CPU other processes used meanwhile is recorded (``contention``).
"""
from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bcedge.bench.contention import Contention
from bcedge.bench.timing import summarize


@dataclass
class Interleaved:
    """Seconds per call, ``samples[name][round]``, and the CPU share others used while they ran."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    contention: float | None = None
    wall_s: float = 0.0

    def summary(self, name: str) -> dict:
        return summarize(self.samples[name])

    def median_ms(self, name: str) -> float:
        return round(float(np.median(self.samples[name])) * 1e3, 3)

    def speedup(self, slower: str, faster: str) -> dict:
        """``slower``'s time over ``faster``'s, per round: median and 10th-90th percentiles (>1: ``faster`` wins)."""
        ratios = np.asarray(self.samples[slower]) / np.asarray(self.samples[faster])
        p10, p50, p90 = np.percentile(ratios, [10, 50, 90])
        return {"median": round(float(p50), 3), "p10": round(float(p10), 3), "p90": round(float(p90), 3),
                "rounds": len(ratios)}


def interleave(calls: dict[str, Callable[[], object]], rounds: int, warmup: int = 2, pause_s: float = 0.0,
               clock: Callable[[], float] = time.perf_counter,
               progress: Callable[[int, int], None] | None = None) -> Interleaved:
    """Call each of ``calls`` ``warmup`` times, then once per round for ``rounds`` rounds, rotating the order.

    ``pause_s`` sleeps between calls (ONNX Runtime's idle threads spin a little after a run). The
    garbage collector is off while timing, so one call does not pay for another's garbage."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    result = Interleaved({name: [] for name in names})
    was_enabled = gc.isenabled()
    gc.disable()
    started = clock()
    try:
        with Contention(in_process=True) as busy:
            for r in range(rounds):
                shift = r % len(names)
                for name in names[shift:] + names[:shift]:
                    if pause_s:
                        time.sleep(pause_s)
                    t0 = clock()
                    calls[name]()
                    result.samples[name].append(clock() - t0)
                gc.collect()   # between rounds, untimed
                if progress:
                    progress(r + 1, rounds)
    finally:
        if was_enabled:
            gc.enable()
    result.contention, result.wall_s = busy.share, round(clock() - started, 2)
    return result
