"""OUT_DIR: where each output goes, and the lock that keeps one service per OUT_DIR.

Every file there is written atomically (``bcedge.atomic``): a reader, or a crash, sees the old file
or the new one; ``remove_stale_temps`` clears what a crash left behind.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bcedge.atomic import remove_stale_temps
from bcedge.report.overlay import overlay_path
from bcedge.watch.state import StateError


@dataclass(frozen=True)
class OutputLayout:
    """Paths in OUT_DIR for an input key (its path relative to IN_DIR, POSIX)."""

    out_dir: Path

    @property
    def results(self) -> Path:
        return self.out_dir / "results"

    @property
    def overlays(self) -> Path:
        return self.out_dir / "overlays"

    @property
    def state(self) -> Path:
        return self.out_dir / "watch.db"

    @property
    def lock(self) -> Path:
        return self.out_dir / "watch.lock"

    @property
    def log(self) -> Path:
        return self.out_dir / "watch.log"

    @property
    def quarantine(self) -> Path:
        return self.out_dir / "quarantine.jsonl"

    @property
    def summary_csv(self) -> Path:
        return self.out_dir / "summary.csv"

    @property
    def summary_json(self) -> Path:
        return self.out_dir / "summary.json"

    def result(self, key: str) -> Path:
        return self.results / f"{key}.json"

    def overlay(self, key: str) -> Path:
        return overlay_path(self.overlays, key)

    def remove_outputs(self, key: str) -> None:
        """Drop the result and overlay of an earlier version of ``key`` (it is now quarantined)."""
        for path in (self.result(key), self.overlay(key)):
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    def remove_stale_temps(self) -> int:
        """Delete temporary files a crash left behind; returns how many (the service holds the OUT_DIR lock)."""
        return remove_stale_temps(self.out_dir)


class OutDirLock:
    """An exclusive lock on OUT_DIR/watch.lock (released by the kernel if the process dies)."""

    def __init__(self, path: Path) -> None:
        self.handle = open(path, "a+")
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one service per OUT_DIR is up to the user
            return
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.seek(0)
            owner = self.handle.read().strip() or "?"
            self.handle.close()
            raise StateError(f"{path.parent}: another bcedge watch (pid {owner}) is using this OUT_DIR") from None
        try:  # the pid only helps a second service say who holds the lock; a full disk must not stop us
            self.handle.seek(0)
            self.handle.truncate()
            self.handle.write(str(os.getpid()))
            self.handle.flush()
        except OSError:
            pass

    def release(self) -> None:
        self.handle.close()
