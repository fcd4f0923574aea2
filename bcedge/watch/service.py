"""The folder service: discover -> wait until complete -> process exactly once -> summarise.

One main thread owns discovery, the stability tracker, scheduling, the summary and the status
line; ``workers`` daemon threads run ``FileProcessor.process`` (hash, count, write). The state
database is shared behind a lock. SIGINT/SIGTERM stop discovery, let files in flight finish
(``grace`` seconds; a second signal cuts it short) and roll back any still running, so a restart
redoes them.
"""
from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import TextIO

from bcedge.watch.completeness import Signature, StabilityTracker, signature
from bcedge.watch.config import ExitCode, WatchConfig
from bcedge.watch.discovery import EventSource, PathFilter, open_events, scan
from bcedge.watch.outputs import OutputLayout
from bcedge.watch.processor import CounterLike, FileProcessor, Outcome, ProcessOptions, Report
from bcedge.watch.progress import StatusLine, Tally, attach_log_file
from bcedge.watch.quarantine import QuarantineLog
from bcedge.watch.state import StateDB, StateError
from bcedge.watch.summary import write_summary

log = logging.getLogger("bcedge.watch")


def open_counter(model: str | Path = "default", backend: str = "auto", device: str = "auto", **options) -> CounterLike:
    """Load the runtime ``Counter`` (the CLI calls this; tests replace it with a stub)."""
    from bcedge.runtime.counter import Counter

    return Counter.load(model, backend=backend, device=device, **options)


class _Workers:
    """Daemon threads taking (key, path) jobs; reports come back on ``done``."""

    def __init__(self, processor: FileProcessor, count: int) -> None:
        self.jobs: queue.Queue[tuple[str, Path] | None] = queue.Queue()
        self.done: queue.Queue[tuple[Path, Report]] = queue.Queue()
        self._processor = processor
        self._threads = [threading.Thread(target=self._work, daemon=True, name=f"bcedge-watch-{i}")
                         for i in range(count)]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            key, path = job
            try:
                report = self._processor.process(key, path)
            except Exception as exc:  # noqa: BLE001 - e.g. the state database closed under us at shutdown
                report = Report(key, Outcome.FAILED, type(exc).__name__, str(exc))
            self.done.put((path, report))

    def cancel_queued(self) -> list[Path]:
        dropped = []
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return dropped
            if job is not None:
                dropped.append(job[1])

    def stop(self) -> None:
        self.cancel_queued()
        for _ in self._threads:
            self.jobs.put(None)


class _Lock:
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
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()

    def release(self) -> None:
        self.handle.close()


class WatchService:
    """``WatchService(counter, config).run()`` -> ExitCode. ``counter`` is any object with ``meta`` and
    ``count_file(path)`` (see ``bcedge.watch.processor.CounterLike``)."""

    def __init__(self, counter: CounterLike, config: WatchConfig, status_stream: TextIO | None = None,
                 show_status: bool = True) -> None:
        self.counter, self.config = counter, config
        self.layout = OutputLayout(config.out_dir)
        self.filter = PathFilter(config.in_dir, config.exclude, config.recursive, config.ignore)
        self.tally = Tally()
        self.status = StatusLine(status_stream, enabled=show_status)
        self._signal: int | None = None
        self._abort = False
        self._reason: ExitCode | None = None

    # -- control ----------------------------------------------------------------------------------------
    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """What SIGINT/SIGTERM do (callable from any thread): first call drains, second rolls back now."""
        if self._signal is None:
            self._signal = signum
        else:
            self._abort = True

    def _on_signal(self, signum, frame) -> None:
        self.request_stop(signum)

    def run(self) -> ExitCode:
        self.config.out_dir.mkdir(parents=True, exist_ok=True)
        handler = attach_log_file(log, self.layout.log)
        old_handlers = self._install_signals()
        try:
            lock = _Lock(self.layout.lock)
        except StateError as exc:
            log.error(str(exc), extra={"fields": {"event": "locked"}})
            self._restore(old_handlers, handler)
            return ExitCode.STATE
        try:
            self.state = StateDB(self.layout.state, self.config.in_dir)
        except StateError as exc:
            log.error(str(exc), extra={"fields": {"event": "state_error"}})
            lock.release()
            self._restore(old_handlers, handler)
            return ExitCode.STATE
        try:
            return self._serve()
        finally:
            self.state.close()
            lock.release()
            self.status.close()
            self._restore(old_handlers, handler)

    def _install_signals(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _restore(self, old_handlers: dict, handler: logging.Handler) -> None:
        for sig, old in old_handlers.items():
            signal.signal(sig, old)
        log.removeHandler(handler)
        handler.close()

    # -- the loop -------------------------------------------------------------------------------------------
    def _serve(self) -> ExitCode:
        cfg = self.config
        qlog = QuarantineLog(self.layout.quarantine)
        recovered = self.state.recover(cfg.max_attempts)
        qlog.rewrite(self.state.quarantine_events())
        stale = self.layout.remove_stale_temps()
        options = ProcessOptions(cfg.max_pixels, cfg.overlays, cfg.durable, cfg.model_name)
        self.processor = FileProcessor(self.counter, self.state, self.layout, qlog, options)
        log.info("watch started", extra={"fields": {
            "event": "start", "in_dir": str(cfg.in_dir), "out_dir": str(cfg.out_dir), "once": cfg.once,
            "workers": cfg.workers, "model": self.processor.model, "redo_after_crash": len(recovered["redo"]),
            "quarantined_after_crash": recovered["quarantined"], "stale_temps_removed": stale}})
        self.tracker = StabilityTracker(cfg.settle)
        self._settled: dict[Path, Signature] = {}
        self._in_flight: set[Path] = set()
        self._recheck: set[Path] = set()
        self._failures_in_a_row = 0
        events = None if cfg.once else open_events(self.filter, cfg.poll)
        workers = _Workers(self.processor, cfg.workers)
        try:
            code = self._loop(events, workers)
        finally:
            if events is not None:
                events.stop()
            workers.stop()
        summary = write_summary(self.state, self.layout, self.processor.model, cfg.durable)
        log.info("watch stopped", extra={"fields": {"event": "stop", "exit_code": int(code), **self.tally.as_dict(),
                                                     "images_total": summary["images"]}})
        return code

    def _loop(self, events: EventSource | None, workers: _Workers) -> ExitCode:
        cfg = self.config
        for path in scan(cfg.in_dir, self.filter):
            self._observe(path)
        self._next_rescan = time.monotonic() + (cfg.poll_interval if events is None else cfg.rescan_interval)
        self._last_summary, self._summary_cost, dirty = time.monotonic(), 0.0, True
        stop_deadline: float | None = None
        while True:
            if self._signal is not None and stop_deadline is None:
                stop_deadline = self._begin_stop(workers)
            if stop_deadline is not None:
                if not self._in_flight:
                    break
                if self._abort or time.monotonic() >= stop_deadline:
                    self._roll_back()
                    break
            else:
                self._discover(events)
                for path in self.tracker.poll(limit=max(0, 2 * cfg.workers - len(self._in_flight))):
                    self._submit(workers, path)
                if cfg.once and not self._in_flight and not len(self.tracker):
                    break
            busy = bool(self._in_flight or len(self.tracker))
            dirty |= self._collect(workers, timeout=0.05 if busy else 0.25)
            if self._failures_in_a_row >= cfg.max_failures_in_a_row and self._signal is None:
                log.error("too many failures in a row: stopping", extra={"fields": {
                    "event": "abort", "failures_in_a_row": self._failures_in_a_row}})
                self._reason, self._signal = ExitCode.ABORTED, signal.SIGTERM
            dirty = self._summarise() if dirty else False
            self.status.update(self.tally, len(self.tracker), len(self._in_flight))
        self.status.update(self.tally, len(self.tracker), len(self._in_flight), force=True)
        return self._exit_code()

    def _discover(self, events: EventSource | None) -> None:
        """Feed events and (when due) a full rescan into the tracker."""
        if events is not None:
            for kind, path in events.drain():
                self._on_event(kind, path)
        now = time.monotonic()
        if not self.config.once and now >= self._next_rescan:
            for path in scan(self.config.in_dir, self.filter):
                self._observe(path)
            every = self.config.poll_interval if events is None else self.config.rescan_interval
            self._next_rescan = now + every

    def _summarise(self) -> bool:
        """Rewrite the summary when idle or every ``summary_interval``, never spending over ~10% of the
        time on it (it grows with the folder). Returns whether it is still out of date."""
        idle = not self._in_flight and not len(self.tracker)
        every = max(0.0 if idle else self.config.summary_interval, 10 * self._summary_cost)
        if time.monotonic() - self._last_summary < every:
            return True
        started = time.monotonic()
        write_summary(self.state, self.layout, self.processor.model, self.config.durable)
        self._last_summary = time.monotonic()
        self._summary_cost = self._last_summary - started
        return False

    def _exit_code(self) -> ExitCode:
        if self._reason is not None:
            return self._reason
        if self._signal is not None:
            return ExitCode.INTERRUPTED if self._signal == signal.SIGINT else ExitCode.TERMINATED
        return ExitCode.PARTIAL if self.tally.quarantined or self.tally.failed else ExitCode.OK

    def _begin_stop(self, workers: _Workers) -> float:
        self.processor.closing.set()
        for path in workers.cancel_queued():
            self._in_flight.discard(path)
        log.info("stopping: finishing files in flight", extra={"fields": {
            "event": "stopping", "signal": self._signal, "in_flight": len(self._in_flight)}})
        return time.monotonic() + self.config.grace

    def _roll_back(self) -> None:
        for path in self._in_flight:
            key = self.filter.relative(path)
            if key is not None:
                self.state.release(key)
        log.warning("rolled back files in flight", extra={"fields": {
            "event": "rolled_back", "paths": sorted(str(p) for p in self._in_flight)}})

    # -- discovery ----------------------------------------------------------------------------------------
    def _on_event(self, kind: str, path: Path) -> None:
        if kind == "gone":
            self.tracker.forget(path)
            self._settled.pop(path, None)
        elif kind == "dir":
            if self.config.recursive and self.filter.walk_dir(path):
                for found in scan(path, self.filter):
                    self._observe(found)
        else:
            self._observe(path, renamed=kind == "renamed")

    def _observe(self, path: Path, renamed: bool = False) -> None:
        if path in self._in_flight:
            self._recheck.add(path)
            return
        if path in self.tracker:
            self.tracker.observe(path, renamed)
            return
        key = self.filter.relative(path)
        sig = signature(path)
        if key is None or sig is None or self._settled.get(path) == sig:
            return
        row = self.state.lookup(key)
        if row is not None and row.final and row.same_file(sig):
            self._settled[path] = sig  # done or quarantined in an earlier run, unchanged since
            self.tally.skipped += 1
            return
        self.tracker.observe(path, renamed)

    def _submit(self, workers: _Workers, path: Path) -> None:
        key = self.filter.relative(path)
        if key is None:
            return
        self._in_flight.add(path)
        workers.jobs.put((key, path))

    # -- results ------------------------------------------------------------------------------------------
    def _collect(self, workers: _Workers, timeout: float) -> bool:
        """Wait up to ``timeout`` for a finished file, then handle all that are finished; True if any
        changed the outputs."""
        changed = False
        while True:
            try:
                path, report = workers.done.get(timeout=timeout) if timeout else workers.done.get_nowait()
            except queue.Empty:
                return changed
            timeout = 0.0
            self._in_flight.discard(path)
            changed |= self._handle(path, report)
            if path in self._recheck or report.outcome is Outcome.CHANGED:
                self._recheck.discard(path)
                if self._signal is None:
                    self._observe(path)

    def _handle(self, path: Path, report: Report) -> bool:
        fields = {"event": report.outcome.value, "path": report.key, "seconds": round(report.seconds, 4)}
        outcome = report.outcome
        if outcome in (Outcome.DONE, Outcome.SKIPPED, Outcome.QUARANTINED, Outcome.FAILED):
            sig = signature(path)
            if sig is not None:
                self._settled[path] = sig
        if outcome is Outcome.DONE:
            self.tally.count_done()
            self._failures_in_a_row = 0
            log.info("counted", extra={"fields": {**fields, "total": report.total}})
            return True
        if outcome is Outcome.QUARANTINED:
            self.tally.quarantined += 1
            self._failures_in_a_row = 0
            log.warning(report.message, extra={"fields": {**fields, "error": report.error}})
            return True
        if outcome is Outcome.FAILED:
            self.tally.failed += 1
            self._failures_in_a_row += 1
            log.error(report.message, extra={"fields": {**fields, "error": report.error}})
        elif outcome is Outcome.SKIPPED:
            self.tally.skipped += 1
        elif outcome is Outcome.CHANGED:
            log.info("changed while being read: waiting for it to settle", extra={"fields": fields})
        return False


def run_watch(counter: CounterLike, config: WatchConfig, show_status: bool = True) -> ExitCode:
    """Run the service until it is done (``config.once``) or stopped by SIGINT/SIGTERM."""
    return WatchService(counter, config, show_status=show_status).run()
