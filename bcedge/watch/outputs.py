"""Where outputs go in OUT_DIR, and writing them atomically (temporary file, fsync, rename).

A reader (or a crash) sees either the old file or the new one, never half of one. Temporary
files are named ``.<name>.<random>.watch-tmp`` next to their target; a crash can leave one behind
and ``remove_stale_temps`` clears them at the next start.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMP_TAG = ".watch-tmp"


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that it appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_TAG, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), durable)


def atomic_write_json(path: Path, obj: Any, durable: bool = True, indent: int | None = 1) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n", durable)


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
        return self.overlays / f"{key}.png"

    def remove_outputs(self, key: str) -> None:
        """Drop the result and overlay of an earlier version of ``key`` (it is now quarantined)."""
        for path in (self.result(key), self.overlay(key)):
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    def remove_stale_temps(self) -> int:
        """Delete temporary files a crash left behind; returns how many."""
        removed = 0
        # (the overlay writer of bcedge.report names its temporary files NAME.tmp)
        for root, pattern in ((self.results, f"**/*{TEMP_TAG}"), (self.overlays, "**/*.tmp"),
                              (self.overlays, f"**/*{TEMP_TAG}"), (self.out_dir, f"*{TEMP_TAG}")):
            if not root.is_dir():
                continue
            for tmp in root.glob(pattern):
                try:
                    tmp.unlink()
                    removed += 1
                except OSError:
                    pass
        return removed
