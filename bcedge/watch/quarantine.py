"""Bad inputs: which errors are the input's fault, and OUT_DIR/quarantine.jsonl.

The state database is the source of truth (each quarantine is logged there in the same
transaction as the status change); quarantine.jsonl lists the files quarantined now, one line
each: appended after that commit, and rewritten from the database at every start and whenever a
quarantined file is counted after all, so a crash never leaves a line missing, doubled or torn.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from bcedge.atomic import atomic_write_text
from bcedge.imageio import ImageReadError
from bcedge.report.counts import iso_time
from bcedge.runtime.sources import ImageTooLarge


# Raised while reading or counting a file, these mean "this input is bad", not "we are broken".
# OSError covers unreadable files (permissions, I/O errors); MemoryError an image too big to hold.
INPUT_ERRORS: tuple[type[BaseException], ...] = (ImageReadError, ImageTooLarge, OSError, MemoryError)


def error_name(exc: BaseException) -> str:
    return type(exc).__name__


def _line(event: dict[str, Any]) -> str:
    record = dict(event)
    record["time"] = iso_time(record["time"]) if record.get("time") else None
    return json.dumps(record, ensure_ascii=False) + "\n"


class QuarantineLog:
    """OUT_DIR/quarantine.jsonl: one JSON object per quarantined file (path, error, message, ...)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def rewrite(self, events: list[dict[str, Any]]) -> None:
        with self._lock:
            atomic_write_text(self.path, "".join(_line(e) for e in events))

    def append(self, event: dict[str, Any]) -> None:
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(_line(event))
