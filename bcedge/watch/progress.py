"""What the service tells people: structured logs (JSON lines in OUT_DIR/watch.log) and a status line.

Log calls pass their fields as ``extra={"fields": {...}}``; the message is the event's human text.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bcedge.report.counts import iso_time
from bcedge.report.names import escape_text


def _printable(value):
    """Strings (in lists and dicts too) with bytes that are not UTF-8 escaped: a log line is always UTF-8."""
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, message, and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": iso_time(record.created), "level": record.levelname.lower(), "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(_printable(entry), ensure_ascii=False, default=lambda v: escape_text(str(v)))


class TextFormatter(logging.Formatter):
    """For the terminal: ``bcedge watch: message (key=value ...)``."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in (getattr(record, "fields", {}) or {}).items() if k != "event"}
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        text = f"bcedge watch: {record.levelname.lower()}: {record.getMessage()}" + (f" ({extra})" if extra else "")
        return escape_text(text)


class LogFile(logging.handlers.RotatingFileHandler):
    """The JSON-lines log in OUT_DIR. When OUT_DIR is full its lines are lost, and it says so once on
    stderr (not a traceback per line, as logging does), until a line gets written again."""

    _failing = False

    def emit(self, record: logging.LogRecord) -> None:
        self._failed_now = False
        super().emit(record)
        if not self._failed_now:
            self._failing = False

    def handleError(self, record: logging.LogRecord) -> None:
        self._failed_now = True
        if not self._failing:
            self._failing = True
            error = sys.exc_info()[1]
            sys.stderr.write(escape_text(f"bcedge watch: cannot write {self.baseFilename} ({error}); "
                                         "log lines are lost until it can\n"))


def attach_log_file(logger: logging.Logger, path: Path) -> logging.Handler:
    """Add a rotating JSON-lines handler (10 MB x 3) for ``path``; the caller removes it when done."""
    handler = LogFile(path, maxBytes=10_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.INFO)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


@dataclass
class Tally:
    """What this run did so far."""

    done: int = 0
    skipped: int = 0
    quarantined: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)
    first_done: float | None = None
    last_done: float | None = None

    def count_done(self) -> None:
        now = time.monotonic()
        self.first_done = self.first_done or now
        self.last_done = now
        self.done += 1

    def rate(self) -> float:
        """Images per second from the first to the last finished image."""
        if not self.first_done or self.done < 2 or self.last_done == self.first_done:
            return 0.0
        return (self.done - 1) / (self.last_done - self.first_done)

    def as_dict(self) -> dict:
        return {"done": self.done, "skipped": self.skipped, "quarantined": self.quarantined, "failed": self.failed,
                "images_per_s": round(self.rate(), 2), "elapsed_s": round(time.monotonic() - self.started, 2)}


class StatusLine:
    """A one-line progress display, redrawn in place on a terminal, printed every ``every`` seconds elsewhere."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True, every: float | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every if every is not None else (0.5 if self.tty else 30.0)
        self._last = 0.0
        self._width = 0

    def update(self, tally: Tally, waiting: int, in_flight: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < self.every):
            return
        self._last = now
        text = (f"watch: {tally.done} done, {tally.skipped} skipped, {tally.quarantined} quarantined, "
                f"{tally.failed} failed | {waiting} waiting, {in_flight} in flight | {tally.rate():.1f} img/s")
        if self.tty:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
