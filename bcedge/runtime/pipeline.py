"""Stages joined by bounded queues: each stage runs in its own thread, a full queue blocks its producer.

Back-pressure keeps memory bounded (a fast reader cannot run ahead of inference by more than
``depth`` items per queue), and the stages overlap: while the backend runs one batch, the reader
decodes the next strip and the decoder merges the previous batch's boxes.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterable, Iterator

DONE = object()       # the end of a stream of items between threads


class Failure:
    """An exception raised in a worker thread, handed to the consumer to raise there."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def drain(get: Callable[[], Any], threads: list[threading.Thread], stop: threading.Event,
          detached: tuple[threading.Thread, ...] = ()) -> Iterator[Any]:
    """Start ``threads`` (and ``detached``) and yield what ``get`` returns until ``DONE``; a ``Failure`` is raised
    here. However the consumer stops (done, error, or closing the generator), ``stop`` is set and ``threads`` are
    joined. ``detached`` daemon threads are not waited for: one blocked in a caller's source (a camera awaiting its
    trigger) ends after that read returns, and the consumer should not wait for it."""
    for thread in (*threads, *detached):
        thread.start()
    try:
        while True:
            item = get()
            if item is DONE:
                return
            if isinstance(item, Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (the last may be shorter): tiles into inference batches."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_stages(source: Iterable[Any], stages: list[Callable[[Any], Iterable[Any]]], depth: int = 2) -> Iterator[Any]:
    """Feed ``source`` through ``stages`` (each maps one item to zero or more items), yielding the last
    stage's items in order. An exception in any stage is re-raised here, and all threads stop."""
    queues = [queue.Queue(maxsize=depth) for _ in range(len(stages) + 1)]
    stop = threading.Event()

    def put(q: queue.Queue, item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def feed() -> None:
        try:
            for item in source:
                if not put(queues[0], item):
                    return
            put(queues[0], DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(queues[0], Failure(exc))

    def work(stage: Callable, inbox: queue.Queue, outbox: queue.Queue) -> None:
        while not stop.is_set():
            try:
                item = inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is DONE or isinstance(item, Failure):
                put(outbox, item)
                return
            try:
                for result in stage(item):
                    if not put(outbox, result):
                        return
            except BaseException as exc:  # noqa: BLE001
                put(outbox, Failure(exc))
                return

    threads = [threading.Thread(target=feed, daemon=True, name="bcedge-source")]
    threads += [threading.Thread(target=work, args=(s, queues[i], queues[i + 1]), daemon=True, name=f"bcedge-stage{i}")
                for i, s in enumerate(stages)]
    yield from drain(queues[-1].get, threads, stop)


def run_inline(source: Iterable[Any], stages: list[Callable[[Any], Iterable[Any]]]) -> Iterator[Any]:
    """``run_stages`` without threads, for work too small to overlap (one batch of a camera frame):
    starting and joining a thread per stage would cost more than it could hide."""
    def chain(items: Iterable[Any], stage: Callable[[Any], Iterable[Any]]) -> Iterator[Any]:
        for item in items:
            yield from stage(item)

    items: Iterable[Any] = source
    for stage in stages:
        items = chain(items, stage)
    yield from items
