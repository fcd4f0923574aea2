"""One file, exactly once: the protocol between the state database, the counter and the outputs.

    stat -> (same size/mtime/inode as a final row? skip) -> sha256 -> (same content as a final row? skip)
    -> claim (processing) -> precheck + count -> file unchanged? -> overlay, result JSON (atomic)
    -> done

The result file is written before the row says ``done``; a crash anywhere leaves the row
``processing`` and the next start redoes it, overwriting the result file. What goes wrong is
sorted by whose fault it is:

- the input's (corrupt, not an image, too large): quarantined;
- a transient cause (unreadable for now, cut short or empty: perhaps still being written):
  ``RETRY`` after a delay, until ``max_attempts`` claims of that content, then quarantined;
- OUT_DIR's (full, read-only): ``BLOCKED``, the file stays pending while the service waits;
- anything else (a counter bug): ``FAILED``, retried at the next start.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from bcedge.atomic import atomic_write_json
from bcedge.report.counts import iso_time, model_info, result_entry
from bcedge.report.names import escape_name, escape_text
from bcedge.watch.completeness import EmptyFile, Signature, TruncatedImage, precheck, readable, signature
from bcedge.watch.outputs import OutputLayout
from bcedge.watch.quarantine import INPUT_ERRORS, QuarantineLog, error_name
from bcedge.watch.state import FileRow, OutputUnavailable, StateDB, StateError

log = logging.getLogger("bcedge.watch")

TRANSIENT: tuple[type[BaseException], ...] = (PermissionError, TruncatedImage, EmptyFile)
UNREADABLE = ("PermissionError",)  # quarantined for this: tried again once the file can be read


def still_settled(row: FileRow | None, sig: Signature, path: Path) -> bool:
    """Whether a final row still stands for the file at ``path``: same (size, mtime, inode), and not
    quarantined as unreadable while it can be read now (chmod changes no signature)."""
    if row is None or not row.final or not row.same_file(sig):
        return False
    return not (row.status == "quarantined" and row.error in UNREADABLE and readable(path))


class CounterLike(Protocol):
    """What the service needs from ``bcedge.runtime.counter.Counter`` (any object with these members)."""

    meta: Any  # ModelMeta: class_names, arch, versions

    def count_file(self, path: str | Path) -> Any:  # CountResult: to_dict(), detections, class_names, image_size
        ...


class Outcome(str, Enum):
    DONE = "done"
    SKIPPED = "skipped"            # already processed with this content
    QUARANTINED = "quarantined"
    FAILED = "failed"              # our fault, not the file's: retried at the next start
    CHANGED = "changed"            # written to while we read it: wait until it settles again
    RETRY = "retry"                # a transient cause: try again in ``retry_in`` seconds
    BLOCKED = "blocked"            # OUT_DIR cannot take writes: still pending, the service waits
    VANISHED = "vanished"
    CANCELLED = "cancelled"        # shutting down before it was claimed


@dataclass
class Report:
    key: str
    outcome: Outcome
    error: str | None = None
    message: str | None = None
    total: int | None = None
    seconds: float = 0.0
    retry_in: float = 0.0
    quarantine_event: dict[str, Any] | None = field(default=None, repr=False)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ProcessOptions:
    max_pixels: int | None = None
    overlays: bool = False
    durable: bool = True
    model_name: str = ""
    max_attempts: int = 3
    retry_delay: float = 2.0  # before the first retry of a transient cause; doubles each time


class FileProcessor:
    """Runs the protocol above; safe to call from several worker threads for different keys."""

    def __init__(self, counter: CounterLike, state: StateDB, layout: OutputLayout, qlog: QuarantineLog,
                 options: ProcessOptions) -> None:
        self.counter, self.state, self.layout, self.qlog, self.options = counter, state, layout, qlog, options
        self.model = model_info(counter.meta, options.model_name)
        self.closing = threading.Event()

    def process(self, key: str, path: Path) -> Report:
        started = time.perf_counter()
        try:
            report = self._process(key, path)
        except OutputUnavailable as exc:
            report = self._blocked(key, exc)
        report.seconds = time.perf_counter() - started
        return report

    def _process(self, key: str, path: Path) -> Report:
        sig = signature(path)
        if sig is None:
            return Report(key, Outcome.VANISHED)
        row = self.state.lookup(key)
        if still_settled(row, sig, path):
            return Report(key, Outcome.SKIPPED)
        try:
            digest = sha256_file(path)
        except OSError as exc:
            return self._input_error(key, row, self.state.claim(key, sig, None), exc)
        if signature(path) != sig:
            return Report(key, Outcome.CHANGED)
        if row and row.final and row.sha256 == digest and row.error not in UNREADABLE:
            self.state.touch(key, sig)
            return Report(key, Outcome.SKIPPED)
        if self.closing.is_set():
            return Report(key, Outcome.CANCELLED)
        attempt = self.state.claim(key, sig, digest)
        try:
            precheck(path, self.options.max_pixels)
            result = self.counter.count_file(path)
        except INPUT_ERRORS as exc:
            if signature(path) != sig:  # rewritten while we read it: not its final content
                self.state.release(key)
                return Report(key, Outcome.CHANGED)
            return self._input_error(key, row, attempt, exc)
        except Exception as exc:  # noqa: BLE001 - a counter bug must not stop the service
            log.exception("counter failed", extra={"fields": {"event": "failed", "path": key}})
            message = escape_text(f"{escape_name(path)}: {exc}")
            self.state.mark_failed(key, error_name(exc), message)
            return Report(key, Outcome.FAILED, error_name(exc), message)
        if signature(path) != sig:
            self.state.release(key)
            return Report(key, Outcome.CHANGED)
        try:
            total = self._write_outputs(key, path, sig, digest, result, row)
        except OutputUnavailable:
            raise
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:  # the input's name makes a result name too long
                return self._quarantine(key, row, exc)
            if self._about_output(exc):
                raise OutputUnavailable(escape_text(str(exc))) from exc
            return self._failed_outputs(key, path, exc)
        except Exception as exc:  # noqa: BLE001 - not the input's fault
            return self._failed_outputs(key, path, exc)
        return Report(key, Outcome.DONE, total=total)

    def _about_output(self, exc: OSError) -> bool:
        """Whether ``exc`` is about a file in OUT_DIR (writes name their target, see ``bcedge.atomic``)."""
        name = exc.filename
        return name is None or str(name).startswith(str(self.layout.out_dir))

    def _failed_outputs(self, key: str, path: Path, exc: BaseException) -> Report:
        log.exception("writing outputs failed", extra={"fields": {"event": "failed", "path": key}})
        message = escape_text(f"writing outputs of {escape_name(path)}: {exc}")
        self.state.mark_failed(key, error_name(exc), message)
        return Report(key, Outcome.FAILED, error_name(exc), message)

    def _blocked(self, key: str, exc: OutputUnavailable) -> Report:
        try:
            self.state.release(key)  # may fail too: the service releases it again when OUT_DIR is back
        except (OutputUnavailable, StateError):
            pass
        return Report(key, Outcome.BLOCKED, "OutputUnavailable", escape_text(str(exc)))

    def _input_error(self, key: str, row: FileRow | None, attempt: int, exc: BaseException) -> Report:
        """A transient cause is retried later while attempts remain; anything else is quarantined."""
        if isinstance(exc, TRANSIENT) and attempt < self.options.max_attempts:
            message = escape_text(str(exc))
            self.state.mark_retry(key, error_name(exc), message)
            delay = self.options.retry_delay * 2 ** (attempt - 1)
            return Report(key, Outcome.RETRY, error_name(exc), message, retry_in=delay)
        return self._quarantine(key, row, exc)

    def _quarantine(self, key: str, row: FileRow | None, exc: BaseException) -> Report:
        message = escape_text(str(exc))
        try:
            self.layout.remove_outputs(key)  # an earlier version's result must not outlive it
            event = self.state.mark_quarantined(key, error_name(exc), message)
            if row is not None and row.status == "quarantined":  # its earlier line goes
                self.qlog.rewrite(self.state.quarantine_events())
            else:
                self.qlog.append(event)
        except OSError as exc_out:
            if isinstance(exc_out, OutputUnavailable):
                raise
            raise OutputUnavailable(escape_text(str(exc_out))) from exc_out
        return Report(key, Outcome.QUARANTINED, error_name(exc), message, quarantine_event=event)

    def _write_outputs(self, key: str, path: Path, sig: Signature, digest: str, result: Any,
                       row: FileRow | None) -> int:
        extra: dict[str, Any] = {"sha256": digest}
        if self.options.overlays:
            extra["overlay"] = self._write_overlay(key, path, result)
        doc = result_entry(key, result, detections=True, **extra)
        doc["file"] = {"path": key, "source": escape_name(path), "size": sig.size,
                       "mtime": iso_time(sig.mtime_ns / 1e9), "sha256": digest}
        doc["model"] = self.model
        doc["processed_at"] = iso_time(time.time())
        atomic_write_json(self.layout.result(key), doc, self.options.durable)
        self.state.mark_done(key, doc["counts"], doc["total"], (doc["width"], doc["height"]), doc["flags"],
                             doc["tiles"], doc.get("scale"), doc.get("tile"))
        if row is not None and row.status == "quarantined":  # counted after all: its line goes
            self.qlog.rewrite(self.state.quarantine_events())
        return doc["total"]

    def _write_overlay(self, key: str, path: Path, result: Any) -> str:
        """Overlay PNG (read by strips, downscaled for huge smears), written atomically."""
        from bcedge.report.counts import legend_notes
        from bcedge.report.overlay import write_source_overlay
        from bcedge.runtime.frames import decode_cap

        target = write_source_overlay(self.layout.overlay(key), path, result.detections, list(result.class_names),
                                      self.options.durable, legend_notes(result), decode_cap(self.options.max_pixels))
        return target.relative_to(self.layout.out_dir).as_posix()
