"""How busy the rest of the machine is: a shared machine's other jobs distort timings, so every cell
records the share of the CPU other processes used while it ran, and a run can wait for a quiet moment.

    with Contention() as busy:
        ...run a cell in a child process...
    busy.share        # 0.0: the machine was ours; 0.5: others used half of all cores

Linux only (/proc/stat); elsewhere ``share`` is None. The CPU time of this process's children (the cell)
is subtracted; this process's own time counts as "other", which is negligible while it waits on a child.
"""
from __future__ import annotations

import os
import resource
import time
from typing import Callable


def _cpu_busy_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (/proc/stat), or None where unreadable."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class Contention:
    """How much of the machine's CPU other processes used while a cell ran (0: none, 1: all of it).

    ``in_process``: the measured work runs in this process (not in a child), so this process's own
    CPU time is subtracted instead of its children's."""

    def __init__(self, in_process: bool = False) -> None:
        self._own = _self_cpu if in_process else _children_cpu

    def __enter__(self) -> "Contention":
        self.busy, self.children = _cpu_busy_seconds(), self._own()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        busy = _cpu_busy_seconds()
        wall = time.perf_counter() - self.started
        self.share = None
        if busy is not None and self.busy is not None and wall > 0:
            others = (busy - self.busy) - (self._own() - self.children)
            self.share = round(min(1.0, max(0.0, others / (wall * (os.cpu_count() or 1)))), 3)


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_for_quiet(threshold: float, max_wait_s: float, log: Callable[[str], None],
                   sample_s: float = 3.0) -> tuple[float, bool]:
    """Wait (up to ``max_wait_s``) until other processes use at most ``threshold`` of the CPU.

    Returns (seconds waited, whether it got that quiet).
    """
    started = time.perf_counter()
    told = False
    while True:
        with Contention() as contention:
            time.sleep(sample_s)
        waited = round(time.perf_counter() - started, 1)
        if contention.share is None or contention.share <= threshold:
            return waited, True
        if waited >= max_wait_s:
            return waited, False
        if not told:
            log(f"  waiting for a quieter machine (others use {100 * contention.share:.0f}% of the CPU)")
            told = True
