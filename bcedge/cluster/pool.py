"""Ray actors that each hold one ``CountWorker``, and the retries that make a killed worker cost nothing.

Actors restart whenever their process dies (``max_restarts=-1``); Ray itself does not retry their
tasks (``max_task_retries=0``): the driver resubmits a task whose worker died to the least busy
*other* worker, up to ``TRIES`` times in all, and then reports the image as lost (``WorkerLost``).
A task's result is taken once (``bcedge.cluster.ordering``), and workers write nothing, so a task
that ran twice (its first worker died after finishing) still leaves each output written once.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from bcedge.cluster.errors import ClusterError, WorkerLost
from bcedge.cluster.worker import BeforeJob, CounterSpec, CountWorker

TRIES = 3   # runs of one task on workers that died under it before its image is reported lost


@dataclass(eq=False)
class Task:
    method: str                 # a CountWorker method: count_image, count_band
    job: Any
    ref: Any = None             # the ObjectRef of the current try
    actor: Any = None
    tries: int = 1
    value: Any = None           # the outcome, or WorkerLost, once settled
    settled: bool = field(default=False)


class WorkerPool:
    """``workers`` actors holding a ``Counter`` loaded from ``spec``; ``actor_options`` are Ray's
    (``num_cpus``, ``num_gpus``, ``resources``)."""

    def __init__(self, ray, spec: CounterSpec, workers: int, actor_options: dict | None = None,
                 before_job: BeforeJob | None = None) -> None:
        self.ray = ray
        options = {"num_cpus": 1, **(actor_options or {})}
        threads = max(1, int(options["num_cpus"])) if options["num_cpus"] else None
        actor = ray.remote(max_restarts=-1, max_task_retries=0, **options)(CountWorker)
        self.actors = [actor.remote(spec, threads, before_job) for _ in range(workers)]
        self._busy = {id(a): 0 for a in self.actors}

    def start(self, timeout: float | None = None) -> tuple[Any, str]:
        """Load the model on every worker; the metadata and backend description of the first."""
        refs = [a.start.remote() for a in self.actors]
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=timeout)
        if len(ready) < len(refs):
            raise ClusterError(f"only {len(ready)} of {len(refs)} workers started within {timeout:.0f} s: "
                               "the cluster may lack the CPUs or GPUs asked for")
        try:
            return self.ray.get(refs)[0]
        except self.ray.exceptions.RayTaskError as exc:
            raise (exc.cause or exc) from None   # the model's own error (no such file, backend unavailable), as locally

    def submit(self, method: str, job: Any) -> Task:
        task = Task(method, job)
        self._send(task)
        return task

    def _send(self, task: Task, avoid: Any = None) -> None:
        choices = [a for a in self.actors if a is not avoid] or self.actors
        task.actor = min(choices, key=lambda a: self._busy[id(a)])
        self._busy[id(task.actor)] += 1
        task.ref = getattr(task.actor, task.method).remote(task.job)

    def wait(self, tasks: list[Task], timeout: float | None = None) -> list[Task]:
        """Tasks of ``tasks`` settled by now (at least one unless ``timeout``); a task whose worker
        died is sent again instead, and counts as settled (``WorkerLost``) after ``TRIES`` tries."""
        pending = {t.ref: t for t in tasks if not t.settled}
        if not pending:
            return [t for t in tasks if t.settled]
        ready, _ = self.ray.wait(list(pending), num_returns=1, timeout=timeout)
        if ready:   # and whatever else is done by now
            ready, _ = self.ray.wait(list(pending), num_returns=len(pending), timeout=0)
        settled = []
        for ref in ready:
            task = pending[ref]
            self._busy[id(task.actor)] -= 1
            try:
                task.value = self.ray.get(ref)
            except self.ray.exceptions.RayActorError as exc:
                if task.tries < TRIES:
                    task.tries += 1
                    self._send(task, avoid=task.actor)
                    continue
                task.value = WorkerLost(f"{task.job.path}: the worker counting it died {task.tries} times "
                                        f"(killed, or out of memory); not counted ({type(exc).__name__})")
            task.settled = True
            settled.append(task)
        return settled

    def result(self, task: Task) -> Any:
        while not task.settled:
            self.wait([task])
        return task.value

    def close(self) -> None:
        for actor in self.actors:
            with contextlib.suppress(Exception):   # already gone
                self.ray.kill(actor)
        self.actors = []
