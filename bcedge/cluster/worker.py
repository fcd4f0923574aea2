"""A cluster worker: one loaded ``Counter`` that counts whole images or bands of huge ones.

The class knows nothing of Ray (``bcedge.cluster.pool`` makes it an actor), so it runs and is
tested in-process too. It writes nothing: it returns detections, and only the driver writes
outputs, once each (a task retried after a worker died leaves no half-written file behind).
The model is loaded on first use, so a worker restarted after a crash loads it again by itself.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bcedge.cluster.bands import count_band
from bcedge.cluster.jobs import BandJob, BandOutcome, ImageJob, ImageOutcome

BeforeJob = Callable[[Any], None]   # called with each job before it runs: fault injection in tests


@dataclass(frozen=True)
class CounterSpec:
    """What every worker loads: ``Counter.load(model, backend=..., device=..., **options)``; ``cwd``: the
    driver's folder, where relative paths (images, model) start on every machine sharing the storage."""

    model: str = "default"
    backend: str = "auto"
    device: str = "auto"
    options: dict = field(default_factory=dict)
    cwd: str = ""

    def load(self):
        from bcedge.runtime.counter import Counter

        return Counter.load(self.model, backend=self.backend, device=self.device, **self.options)


class CountWorker:
    def __init__(self, spec: CounterSpec, threads: int | None = None, before_job: BeforeJob | None = None) -> None:
        if threads:
            os.environ.setdefault("BCEDGE_THREADS", str(threads))   # the backend's CPU threads: this worker's share
        if spec.cwd and os.path.isdir(spec.cwd):
            os.chdir(spec.cwd)   # paths and error messages as the user gave them, as in the local run
        self.spec, self.before_job = spec, before_job
        self._counter = None

    @property
    def counter(self):
        if self._counter is None:
            self._counter = self.spec.load()
            self._counter.warmup()
        return self._counter

    def start(self) -> tuple[Any, str]:
        """Load the model; its metadata and the backend's description (what the report names)."""
        return self.counter.meta, self.counter.backend.describe()

    def count_image(self, job: ImageJob) -> ImageOutcome:
        counter = self.counter
        if self.before_job:
            self.before_job(job)
        counter.scale_history = job.history
        outcome = ImageOutcome(job.index, job.history)
        try:
            outcome.result = counter.count_file(job.path)
        except (OSError, ValueError) as exc:   # the input's fault, reported as the local run reports it
            outcome.error = exc
        outcome.history_after = counter.scale_history
        return outcome

    def count_band(self, job: BandJob) -> BandOutcome:
        counter = self.counter
        if self.before_job:
            self.before_job(job)
        try:
            return count_band(counter, job)
        except (OSError, ValueError) as exc:
            return BandOutcome(job.tiles, error=exc)

    def pid(self) -> int:
        return os.getpid()
