"""One file, exactly once: the protocol between the state database, the counter and the outputs.

    stat -> (same size/mtime/inode as a final row? skip) -> sha256 -> (same content as a final row? skip)
    -> claim (processing) -> precheck + count -> file unchanged? -> overlay, result JSON (atomic)
    -> done

The result file is written before the row says ``done``; a crash anywhere leaves the row
``processing`` and the next start redoes it, overwriting the result file. Errors that are the
input's fault quarantine it; anything else (a counter bug, a full disk) marks it ``failed``.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from bcedge.atomic import atomic_write_json
from bcedge.watch.completeness import Signature, precheck, signature
from bcedge.watch.outputs import OutputLayout
from bcedge.watch.quarantine import INPUT_ERRORS, QuarantineLog, error_name, iso_time
from bcedge.watch.state import StateDB

log = logging.getLogger("bcedge.watch")


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
    quarantine_event: dict[str, Any] | None = field(default=None, repr=False)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def model_info(counter: CounterLike, name: str = "") -> dict[str, Any]:
    """What identifies the model in every result: name, architecture, classes, precision, versions."""
    meta = counter.meta
    info = {"name": name} if name else {}
    for attr in ("arch", "class_names", "input_size", "precision", "versions"):
        value = getattr(meta, attr, None)
        if value is not None:
            info[attr] = list(value) if isinstance(value, tuple) else value
    return info


@dataclass
class ProcessOptions:
    max_pixels: int | None = None
    overlays: bool = False
    durable: bool = True
    model_name: str = ""


class FileProcessor:
    """Runs the protocol above; safe to call from several worker threads for different keys."""

    def __init__(self, counter: CounterLike, state: StateDB, layout: OutputLayout, qlog: QuarantineLog,
                 options: ProcessOptions) -> None:
        self.counter, self.state, self.layout, self.qlog, self.options = counter, state, layout, qlog, options
        self.model = model_info(counter, options.model_name)
        self.closing = threading.Event()

    def process(self, key: str, path: Path) -> Report:
        started = time.perf_counter()
        report = self._process(key, path)
        report.seconds = time.perf_counter() - started
        return report

    def _process(self, key: str, path: Path) -> Report:
        sig = signature(path)
        if sig is None:
            return Report(key, Outcome.VANISHED)
        row = self.state.lookup(key)
        if row and row.final and row.same_file(sig):
            return Report(key, Outcome.SKIPPED)
        try:
            digest = sha256_file(path)
        except OSError as exc:
            return self._reject(key, sig, None, exc)
        if signature(path) != sig:
            return Report(key, Outcome.CHANGED)
        if row and row.final and row.sha256 == digest:
            self.state.touch(key, sig)
            return Report(key, Outcome.SKIPPED)
        if self.closing.is_set():
            return Report(key, Outcome.CANCELLED)
        self.state.claim(key, sig, digest)
        try:
            precheck(path, self.options.max_pixels)
            result = self.counter.count_file(path)
        except INPUT_ERRORS as exc:
            if signature(path) != sig:  # rewritten while we read it: not its final content
                self.state.release(key)
                return Report(key, Outcome.CHANGED)
            return self._quarantine(key, exc)
        except Exception as exc:  # noqa: BLE001 - a counter bug must not stop the service
            log.exception("counter failed", extra={"fields": {"event": "failed", "path": key}})
            self.state.mark_failed(key, error_name(exc), f"{path}: {exc}")
            return Report(key, Outcome.FAILED, error_name(exc), str(exc))
        if signature(path) != sig:
            self.state.release(key)
            return Report(key, Outcome.CHANGED)
        try:
            total = self._write_outputs(key, path, sig, digest, result)
        except Exception as exc:  # noqa: BLE001 - e.g. disk full: not the input's fault
            log.exception("writing outputs failed", extra={"fields": {"event": "failed", "path": key}})
            self.state.mark_failed(key, error_name(exc), f"writing outputs of {path}: {exc}")
            return Report(key, Outcome.FAILED, error_name(exc), str(exc))
        return Report(key, Outcome.DONE, total=total)

    def _reject(self, key: str, sig: Signature, digest: str | None, exc: BaseException) -> Report:
        self.state.claim(key, sig, digest)
        return self._quarantine(key, exc)

    def _quarantine(self, key: str, exc: BaseException) -> Report:
        self.layout.remove_outputs(key)  # an earlier version's result must not outlive it
        event = self.state.mark_quarantined(key, error_name(exc), str(exc))
        self.qlog.append(event)
        return Report(key, Outcome.QUARANTINED, error_name(exc), str(exc), quarantine_event=event)

    def _write_outputs(self, key: str, path: Path, sig: Signature, digest: str, result: Any) -> int:
        doc = {"path": key, **result.to_dict()}
        counts = {str(k): int(v) for k, v in doc.get("counts", {}).items()}
        total = int(doc.get("total", sum(counts.values())))
        doc["file"] = {"path": key, "source": str(path), "size": sig.size, "mtime": iso_time(sig.mtime_ns / 1e9),
                       "sha256": digest}
        doc["model"] = self.model
        doc["processed_at"] = iso_time(time.time())
        if self.options.overlays:
            doc["overlay"] = self._write_overlay(key, path, result)
        atomic_write_json(self.layout.result(key), doc, self.options.durable)
        self.state.mark_done(key, counts, total, tuple(result.image_size))
        return total

    def _write_overlay(self, key: str, path: Path, result: Any) -> str:
        """Overlay PNG (read by strips, downscaled for huge smears), written atomically."""
        from bcedge.report.overlay import write_source_overlay

        target = write_source_overlay(self.layout.overlay(key), path, result.detections, list(result.class_names))
        return target.relative_to(self.layout.out_dir).as_posix()
