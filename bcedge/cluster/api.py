"""``count_files``: the Python API's counterpart of ``bcedge count --engine local|ray``."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


def _local(paths: list[Path], model: str | Path, address: str | None, workers: int | None,
           **options) -> Iterator[tuple[Path, Any]]:
    from bcedge.runtime.counter import Counter

    if address is not None or workers is not None:
        raise ValueError("address and workers are for engine='ray'")
    counter = Counter.load(model, **options)
    for path in paths:
        try:
            yield path, counter.count_file(path)
        except (OSError, ValueError) as exc:   # the input's fault: reported, the others counted
            yield path, exc


def _ray(paths: list[Path], model: str | Path, address: str | None, workers: int | None,
         **options) -> Iterator[tuple[Path, Any]]:
    from bcedge.cluster.engine import RayEngine

    with RayEngine(model, address, workers, **options) as engine:
        yield from engine.count(paths)


ENGINES: dict[str, Callable[..., Iterator[tuple[Path, Any]]]] = {"local": _local, "ray": _ray}


def count_files(paths: Iterable[str | Path], model: str | Path = "default", engine: str = "local",
                address: str | None = None, workers: int | None = None, **options) -> Iterator[tuple[Path, Any]]:
    """``(path, outcome)`` per image file, in order: a ``CountResult``, or the ``OSError`` / ``ValueError``
    (``WorkerLost`` on a cluster) a bad image raised. ``options`` go to ``Counter.load`` (and, for
    ``ray``, ``RayEngine``: ``band_pixels``, ``worker_options``, ``progress``); ``address``: a Ray
    cluster's (none: a local cluster), ``workers``: how many (default: as many as its CPUs hold)."""
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    return ENGINES[engine]([Path(p) for p in paths], model, address, workers, **options)
