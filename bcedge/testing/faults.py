"""Fault injection for cluster tests: ``before_job`` hooks a worker runs before each job (``bcedge.cluster``).

Hooks are picklable objects (they travel to Ray workers) that keep their state in files, so it
survives the worker process they kill: ``KillOnce`` kills its worker the first time a job for one
image starts, ``JobLog`` appends a line per job started (which worker process, which job).
"""
from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path


def _describe(job) -> dict:
    tiles = getattr(job, "tiles", None)
    return {"kind": type(job).__name__, "name": Path(job.path).name, "tiles": list(tiles) if tiles else None}


@dataclass(frozen=True)
class JobLog:
    """Appends ``{"pid", "kind", "name", "tiles"}`` per job started to ``path`` (JSON lines)."""

    path: str

    def __call__(self, job) -> None:
        line = json.dumps({"pid": os.getpid(), **_describe(job)}) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)

    def read(self) -> list[dict]:
        if not os.path.exists(self.path):
            return []
        return [json.loads(line) for line in Path(self.path).read_text(encoding="utf-8").splitlines()]


@dataclass(frozen=True)
class KillOnce:
    """SIGKILLs the worker process the first time a job of ``kind`` (``ImageJob``, ``BandJob``) for the
    image named ``name`` starts there; ``marker`` (a file) records that it happened."""

    marker: str
    name: str
    kind: str = "ImageJob"

    def __call__(self, job) -> None:
        if type(job).__name__ != self.kind or Path(job.path).name != self.name:
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class Hooks:
    """Several hooks, run in order."""

    hooks: tuple

    def __call__(self, job) -> None:
        for hook in self.hooks:
            hook(job)
