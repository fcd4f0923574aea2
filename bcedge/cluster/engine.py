"""``RayEngine``: count image files on a Ray cluster, with the results of a local ``Counter``.

    from bcedge.cluster import RayEngine
    with RayEngine("default", address="ray-head:6379") as engine:   # no address: a local cluster
        for path, outcome in engine.count(paths):   # a CountResult, or the exception a bad image raised
            ...

Each worker holds one ``Counter`` (``bcedge.cluster.worker``). Images go out as paths, several ahead
per worker, and come back in input order (``bcedge.cluster.ordering``); a TIFF over ``band_pixels``
is counted in bands that all workers share (``bcedge.cluster.bands``), with the driver merging its
tiles. A worker killed mid-task costs a retry elsewhere (``bcedge.cluster.pool``). Ray is imported
only here and in the modules it drives, so the run road never needs it.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from bcedge.cluster import ordering
from bcedge.cluster.banded_counter import BandedCounter, MetaOnly
from bcedge.cluster.bands import BAND_PIXELS
from bcedge.cluster.errors import WorkerLost
from bcedge.cluster.jobs import BandJob, ImageJob
from bcedge.cluster.pool import WorkerPool
from bcedge.cluster.progress import ClusterProgress
from bcedge.cluster.session import ray_session
from bcedge.cluster.worker import BeforeJob, CounterSpec
from bcedge.runtime.scale import History

BANDED_FORMATS = ("tiff",)        # formats read by strips at any offset; a PNG band would decode all rows above it
AHEAD_PER_WORKER = 2              # images in flight per worker: one counting, one waiting
START_TIMEOUT_S = 600.0           # workers loading the model (a TensorRT engine can take minutes)
LOCAL_OBJECT_STORE = 2**28        # a local cluster's shared memory: results are boxes, not pixels

Outcome = Any   # CountResult, or the exception a bad image raised (OSError, ValueError, WorkerLost)


class RayEngine:
    """See the module docstring. ``counter_options`` are ``Counter.load``'s (``backend``, ``device``,
    ``cell_size``, ``tile``, ``batch_size``, ``merge`` ...); ``worker_options`` Ray's for each worker
    (default ``{"num_cpus": 1}``; ``{"num_gpus": 1}`` gives each worker a GPU of its own)."""

    def __init__(self, model: str | Path = "default", address: str | None = None, workers: int | None = None, *,
                 band_pixels: int = BAND_PIXELS, worker_options: dict | None = None, progress: bool = False,
                 before_job: BeforeJob | None = None, **counter_options) -> None:
        backend, device = counter_options.pop("backend", "auto"), counter_options.pop("device", "auto")
        self.spec = CounterSpec(str(model), backend, device, dict(counter_options), cwd=os.getcwd())
        self.address, self.workers, self.band_pixels = address, workers, int(band_pixels)
        self.worker_options = {"num_cpus": 1, **(worker_options or {})}
        self.show_progress, self.before_job = progress, before_job
        self.counter: BandedCounter | None = None
        self.progress = ClusterProgress(0, enabled=False)
        self._stack = ExitStack()

    def __enter__(self) -> RayEngine:
        try:
            cpus = self.workers * self.worker_options["num_cpus"] if self.workers else None
            ray = self._stack.enter_context(ray_session(self.address, cpus=cpus and math.ceil(cpus),
                                                        object_store_bytes=LOCAL_OBJECT_STORE))
            workers = self.workers or _fitting_workers(ray, self.worker_options)
            self.pool = WorkerPool(ray, self.spec, workers, self.worker_options, self.before_job)
            self._stack.callback(self.pool.close)
            meta, description = self.pool.start(timeout=START_TIMEOUT_S)
            self.counter = BandedCounter(MetaOnly(meta, description), self._send_bands, workers,
                                         on_tiles=lambda n: self.progress.tiles_done(n), **self.spec.options)
            self.progress = ClusterProgress(0, enabled=self.show_progress)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.progress.close()
        self._stack.close()

    def count(self, paths: Iterable[str | Path]) -> Iterator[tuple[Path, Outcome]]:
        """``(path, outcome)`` for each path, in order, each once."""
        paths = [Path(p) for p in paths]
        self.progress.expect(len(paths))
        banded = [self._is_banded(p) for p in paths]
        order, history, tasks, sent = ordering.InOrder(), History(), [], 0
        while order.next < len(paths):
            i = order.next
            if banded[i]:   # counted by all workers at once, after everything before it
                outcome, history = self._count_banded(paths[i], history)
                order.add(i, outcome)
                sent = i + 1
                yield self._taken(paths, order)
                continue
            ahead = AHEAD_PER_WORKER * len(self.pool.actors) if i > 0 else 1   # the first image alone: its scale
            while sent < len(paths) and not banded[sent] and len(tasks) < ahead:
                tasks.append(self.pool.submit("count_image", ImageJob(sent, str(paths[sent]), history)))
                sent += 1
            outcome = order.peek()
            if outcome is None:
                for task in self.pool.wait(tasks):
                    tasks.remove(task)
                    order.add(task.job.index, task.value)
                continue
            if isinstance(outcome, WorkerLost):
                yield self._taken(paths, order)
                continue
            if not ordering.same_guess(outcome.history, history):   # counted with the wrong guess: again
                order.drop_next()
                tasks.append(self.pool.submit("count_image", ImageJob(i, str(paths[i]), history)))
                continue
            history = outcome.history_after
            yield self._taken(paths, order)

    def _taken(self, paths: list[Path], order: ordering.InOrder) -> tuple[Path, Outcome]:
        path, outcome = paths[order.next], order.take()
        self.progress.image_done()
        if hasattr(outcome, "history_after"):   # an ImageOutcome
            outcome = outcome.result if outcome.error is None else outcome.error
        return path, outcome

    def _count_banded(self, path: Path, history: History) -> tuple[Outcome, History]:
        self.progress.banded(path.name)
        try:
            outcome = self.counter.count_path(str(path), history)
        except (OSError, ValueError, WorkerLost) as exc:
            outcome = exc
        return outcome, self.counter.scale_history

    def _send_bands(self, jobs: list[BandJob]):
        tasks = [self.pool.submit("count_band", job) for job in jobs]
        return [partial(self.pool.result, task) for task in tasks]

    def _is_banded(self, path: Path) -> bool:
        from bcedge.data.imagesize import image_size
        from bcedge.runtime.sources import sniff_format

        try:
            return sniff_format(path).name in BANDED_FORMATS and math.prod(image_size(path)) > self.band_pixels
        except (OSError, ValueError):   # unreadable: a worker reports it, as the local run does
            return False


def _fitting_workers(ray, worker_options: dict) -> int:
    """As many workers as the cluster's CPUs (or GPUs, when each worker asks for some) hold."""
    resources = ray.cluster_resources()
    fits = [resources.get(name.removeprefix("num_").upper(), 0) / need
            for name, need in worker_options.items() if name in ("num_cpus", "num_gpus") and need]
    return max(1, int(min(fits))) if fits else 1
