"""Where outputs go in OUT_DIR. Every file there is written atomically (``bcedge.atomic``): a reader,
or a crash, sees the old file or the new one; ``remove_stale_temps`` clears what a crash left behind.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bcedge.atomic import remove_stale_temps
from bcedge.report.overlay import overlay_path


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
