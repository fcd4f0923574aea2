"""Waiting out an OUT_DIR that cannot take writes (a full disk, a share turned read-only).

The service stops taking new files, keeps the ones that could not be finished as pending, and
tries again after ``first`` seconds, doubling up to ``most``; it says so once when the pause
begins and once when it ends, not once per file or per try.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger("bcedge.watch")


class OutputPause:
    def __init__(self, out_dir: Path, first: float = 1.0, most: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out_dir, self.first, self.most, self.clock = out_dir, first, most, clock
        self.since: float | None = None
        self.paths: list[Path] = []  # inputs to take again when it ends
        self._wait = first
        self._next_try = 0.0

    @property
    def active(self) -> bool:
        return self.since is not None

    def begin(self, error: str, paths: list[Path] = ()) -> None:
        """OUT_DIR refused a write (``error``); ``paths`` wait for the end of the pause."""
        self.paths.extend(p for p in paths if p not in self.paths)
        if self.active:
            return
        self.since, self._wait = self.clock(), self.first
        self._next_try = self.since + self._wait
        log.error("output folder cannot be written: pausing, nothing is lost; retrying until it can",
                  extra={"fields": {"event": "output_blocked", "out_dir": str(self.out_dir), "error": error}})

    def due(self) -> bool:
        """Whether it is time to try OUT_DIR again."""
        return self.active and self.clock() >= self._next_try

    def still_blocked(self) -> None:
        self._wait = min(self._wait * 2, self.most)
        self._next_try = self.clock() + self._wait

    def end(self) -> list[Path]:
        """OUT_DIR takes writes again; returns the inputs to take again."""
        paths, self.paths = self.paths, []
        log.warning("output folder writable again: resuming", extra={"fields": {
            "event": "output_resumed", "paused_s": round(self.clock() - (self.since or self.clock()), 1),
            "files_to_redo": len(paths)}})
        self.since = None
        return paths
