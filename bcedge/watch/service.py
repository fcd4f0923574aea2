"""The folder service: discover -> wait until complete -> process exactly once -> summarise.

One main thread owns discovery, the stability tracker, scheduling, the summary and the status
line; ``workers`` daemon threads run ``FileProcessor.process`` (hash, count, write). The state
database is shared behind a lock. SIGINT/SIGTERM stop discovery, let files in flight finish
(``grace`` seconds; a second signal cuts it short) and roll back any still running, so a restart
redoes them (``abandoned`` then says worker threads may still be inside native code).

Scheduling keeps going whatever happens to a file or to OUT_DIR:
- a transient cause (``Outcome.RETRY``) brings the file back after its delay;
- a file that was in flight when the service died (a suspect) is counted after the others, alone,
  so a kill that merely landed on it is not held against it, and a file that kills the process
  cannot take good files down with it;
- while OUT_DIR cannot be written (``Outcome.BLOCKED``, a failed summary) the service pauses
  (``OutputPause``) and takes the unfinished files again when it can.
"""
from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from pathlib import Path
from typing import TextIO

from bcedge.report.names import escape_name
from bcedge.watch.completeness import Signature, StabilityTracker, signature
from bcedge.watch.config import ExitCode, WatchConfig
from bcedge.watch.discovery import EventSource, PathFilter, open_events, scan
from bcedge.watch.outputs import OutDirLock, OutputLayout
from bcedge.watch.pause import OutputPause
from bcedge.watch.processor import UNREADABLE, CounterLike, FileProcessor, Outcome, ProcessOptions, Report, still_settled
from bcedge.watch.progress import StatusLine, Tally, attach_log_file
from bcedge.watch.quarantine import QuarantineLog
from bcedge.watch.state import StateDB, StateError
from bcedge.watch.summary import write_summary
from bcedge.watch.workers import Workers

log = logging.getLogger("bcedge.watch")


def open_counter(model: str | Path = "default", backend: str = "auto", device: str = "auto", **options) -> CounterLike:
    """Load the runtime ``Counter`` (the CLI calls this; tests replace it with a stub)."""
    from bcedge.runtime.counter import Counter

    return Counter.load(model, backend=backend, device=device, **options)


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
        self.pause = OutputPause(config.out_dir, config.output_retry, config.output_retry_max)
        self.abandoned = False  # rolled back files whose worker threads were still running
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
            lock = OutDirLock(self.layout.lock)
        except StateError as exc:
            log.error(str(exc), extra={"fields": {"event": "locked"}})
            self._restore(old_handlers, handler)
            return ExitCode.STATE
        try:
            self.state = self._wait_for_output(lambda: StateDB(self.layout.state, self.config.in_dir))
        except StateError as exc:
            log.error(str(exc), extra={"fields": {"event": "state_error"}})
            self.state = None
        if self.state is None:  # unusable, or stopped while waiting for OUT_DIR
            lock.release()
            self._restore(old_handlers, handler)
            return ExitCode.STATE if self._signal is None else self._exit_code()
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
        self.qlog = QuarantineLog(self.layout.quarantine)
        options = ProcessOptions(cfg.max_pixels, cfg.overlays, cfg.durable, cfg.model_name, cfg.max_attempts,
                                 cfg.retry_delay)
        self.processor = FileProcessor(self.counter, self.state, self.layout, self.qlog, options)
        started = self._start_up()
        if started is None:  # stopped while waiting for OUT_DIR
            return self._exit_code()
        recovered, stale = started
        log.info("watch started", extra={"fields": {
            "event": "start", "in_dir": str(cfg.in_dir), "out_dir": str(cfg.out_dir), "once": cfg.once,
            "workers": cfg.workers, "model": self.processor.model, "redo_after_crash": len(recovered["redo"]),
            "quarantined_after_crash": recovered["quarantined"], "stale_temps_removed": stale}})
        self.tracker = StabilityTracker(cfg.settle)
        self._settled: dict[Path, Signature] = {}
        self._in_flight: set[Path] = set()
        self._recheck: set[Path] = set()
        self._retry_at: dict[Path, float] = {}
        self._suspects = self.state.suspects()
        self._held: dict[Path, None] = {}  # suspects ready, waiting to run alone
        self._alone: Path | None = None
        self._failures_in_a_row = 0
        events = None if cfg.once else open_events(self.filter, cfg.poll)
        workers = Workers(self.processor, cfg.workers)
        try:
            code = self._loop(events, workers)
        finally:
            if events is not None:
                events.stop()
            workers.stop()
        images = None
        try:
            images = len(write_summary(self.state, self.layout, self.processor.model, cfg.durable)["images"])
        except OSError as exc:
            log.error("summary not written at stop (OUT_DIR cannot be written); the next start writes it",
                      extra={"fields": {"event": "summary_error", "error": str(exc)}})
        log.info("watch stopped", extra={"fields": {"event": "stop", "exit_code": int(code), **self.tally.as_dict(),
                                                     "images_total": images}})
        return code

    def _start_up(self) -> tuple[dict, int] | None:
        """Recover what a crash left, rewrite quarantine.jsonl, clear stale temporaries (waiting while
        OUT_DIR cannot be written). None if stopped by a signal meanwhile."""
        def steps() -> tuple[dict, int]:
            recovered = self.state.recover(self.config.max_attempts)
            self.qlog.rewrite(self.state.quarantine_events())
            return recovered, self.layout.remove_stale_temps()

        return self._wait_for_output(steps)

    def _wait_for_output(self, step):
        """``step()``, tried again with backoff while OUT_DIR cannot take writes (full, read-only);
        None if a signal stops the wait."""
        while True:
            try:
                result = step()
            except OSError as exc:  # OutputUnavailable too
                self.pause.begin(str(exc))
                while not self.pause.due():
                    if self._signal is not None:
                        return None
                    time.sleep(0.05)
                self.pause.still_blocked()
                continue
            if self.pause.active:
                self.pause.end()
            return result

    def _loop(self, events: EventSource | None, workers: Workers) -> ExitCode:
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
                if self.pause.active:
                    self._try_resume(workers)
                else:
                    self._retry_due()
                    self._schedule(workers)
                if cfg.once and self._idle():
                    break
            busy = bool(self._in_flight or len(self.tracker))
            dirty |= self._collect(workers, timeout=0.05 if busy else 0.25)
            if self._failures_in_a_row >= cfg.max_failures_in_a_row and self._signal is None:
                log.error("too many failures in a row: stopping", extra={"fields": {
                    "event": "abort", "failures_in_a_row": self._failures_in_a_row}})
                self._reason, self._signal = ExitCode.ABORTED, signal.SIGTERM
            if dirty and not self.pause.active:
                dirty = self._summarise()
            self.status.update(self.tally, len(self.tracker), len(self._in_flight))
        self.status.update(self.tally, len(self.tracker), len(self._in_flight), force=True)
        return self._exit_code()

    def _idle(self) -> bool:
        return not (self._in_flight or len(self.tracker) or self._retry_at or self._held or self.pause.active)

    def _schedule(self, workers: Workers) -> None:
        """Submit settled files, keeping ~2 per worker queued; suspects wait until nothing else is
        waiting or running, then run one at a time."""
        if self._alone is not None:
            return
        for path in self.tracker.poll(limit=max(0, 2 * self.config.workers - len(self._in_flight))):
            if self.filter.relative(path) in self._suspects:
                self._held[path] = None
            else:
                self._submit(workers, path)
        if self._held and not self._in_flight and not len(self.tracker):
            self._alone = next(iter(self._held))
            del self._held[self._alone]
            self._submit(workers, self._alone)

    def _retry_due(self) -> None:
        now = time.monotonic()
        for path in [p for p, due in self._retry_at.items() if due <= now]:
            del self._retry_at[path]
            self._observe(path)

    def _try_resume(self, workers: Workers) -> None:
        """While paused: when due, try OUT_DIR (the summary, a database write, quarantine.jsonl); if it
        takes them, take the unfinished files again."""
        for path in workers.cancel_queued():  # not claimed yet: they wait with the others
            self._in_flight.discard(path)
            self.pause.paths.append(path)
        if not self.pause.due():
            return
        try:
            write_summary(self.state, self.layout, self.processor.model, self.config.durable)
            self.state.probe()
            self.qlog.rewrite(self.state.quarantine_events())  # lines an append could not write
            for path in self.pause.paths:
                key = self.filter.relative(path)
                if key is not None:
                    self.state.release(key)  # a claim its worker could not undo
        except OSError:
            self.pause.still_blocked()
            return
        for path in self.pause.end():
            self._observe(path)
        self._failures_in_a_row = 0

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
        try:
            write_summary(self.state, self.layout, self.processor.model, self.config.durable)
        except OSError as exc:  # OUT_DIR full or read-only (OutputUnavailable too)
            self.pause.begin(str(exc))
            return True
        self._last_summary = time.monotonic()
        self._summary_cost = self._last_summary - started
        return False

    def _exit_code(self) -> ExitCode:
        if self._reason is not None:
            return self._reason
        if self._signal is not None:
            return ExitCode.INTERRUPTED if self._signal == signal.SIGINT else ExitCode.TERMINATED
        return ExitCode.PARTIAL if self.tally.quarantined or self.tally.failed else ExitCode.OK

    def _begin_stop(self, workers: Workers) -> float:
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
                try:
                    self.state.release(key)
                except OSError:  # OUT_DIR unwritable: the next start finds it processing and redoes it
                    pass
        self.abandoned = bool(self._in_flight)
        log.warning("rolled back files in flight", extra={"fields": {
            "event": "rolled_back", "paths": sorted(escape_name(p) for p in self._in_flight)}})

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
        try:
            self._observe_one(path, renamed)
        except Exception as exc:  # noqa: BLE001 - one file must not stop the service; seen again at a rescan
            log.error("cannot look at this file now: skipped until it is seen again", extra={"fields": {
                "event": "observe_error", "path": escape_name(path), "error": f"{type(exc).__name__}: {exc}"}})

    def _observe_one(self, path: Path, renamed: bool) -> None:
        if path in self._in_flight:
            self._recheck.add(path)
            return
        if path in self.tracker:
            self.tracker.observe(path, renamed)
            return
        if path in self._retry_at or path in self._held or path in self.pause.paths:
            return  # already waiting
        key = self.filter.relative(path)
        sig = signature(path)
        if key is None or sig is None or self._settled.get(path) == sig:
            return
        row = self.state.lookup(key)
        if still_settled(row, sig, path):  # done or quarantined in an earlier run, unchanged since
            if row.error not in UNREADABLE:  # else: looked at again at each scan, in case it became readable
                self._settled[path] = sig
            self.tally.skipped += 1
            return
        self.tracker.observe(path, renamed)

    def _submit(self, workers: Workers, path: Path) -> None:
        key = self.filter.relative(path)
        if key is None:
            return
        self._in_flight.add(path)
        workers.jobs.put((key, path))

    # -- results ------------------------------------------------------------------------------------------
    def _collect(self, workers: Workers, timeout: float) -> bool:
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
        if path == self._alone:
            self._alone = None
        if outcome in (Outcome.DONE, Outcome.SKIPPED, Outcome.QUARANTINED, Outcome.FAILED, Outcome.VANISHED):
            self._suspects.discard(report.key)
        if outcome in (Outcome.DONE, Outcome.SKIPPED, Outcome.FAILED) or (
                outcome is Outcome.QUARANTINED and report.error not in UNREADABLE):
            sig = signature(path)
            if sig is not None:
                self._settled[path] = sig
        if outcome is Outcome.RETRY:
            self._retry_at[path] = time.monotonic() + report.retry_in
            log.info("not readable or not complete yet: trying again later", extra={"fields": {
                **fields, "error": report.error, "message": report.message, "retry_in_s": round(report.retry_in, 2)}})
            return False
        if outcome is Outcome.BLOCKED:
            self.pause.begin(report.message or "", [path])
            return False
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
