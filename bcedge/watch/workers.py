"""The worker threads of the folder service: each takes (key, path) jobs and runs the file processor."""
from __future__ import annotations

import queue
import threading
from pathlib import Path

from bcedge.watch.processor import FileProcessor, Outcome, Report


class Workers:
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
