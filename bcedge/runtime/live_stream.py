"""Counting a stream of frames with threads started once: a reader, a counter, and the caller.

    reader thread --(handoff)--> counting thread(s) --(results, bounded, in order)--> caller (reports, view)

Decoding frame n+1, counting frame n and the caller's work on frame n-1 overlap. The handoff is the
frame policy:

- ``all``: a bounded queue; a reader that is ahead blocks, every frame is counted;
- ``latest``: one slot; a newer frame replaces the one waiting, which is dropped and counted
  (a camera faster than the counter: results stay current);
- ``every:N``: every Nth frame is decoded and counted, the others only grabbed.

With ``workers=2`` two counting threads share the counter: while one is in the backend (calls there
are serialised), the other prepares, decodes boxes or merges its frame; results still come in frame
order. On a 2-core CPU it depends on the neighbours: under other jobs' load two threads gave 130% of one
thread's frames/s, on the quiet machine 90% and 16 ms more latency (``benchmarks/live_latency.py``), so
``default_workers`` gives 2 only where there are more than 2 cores.

``FrameStream.stop()`` (e.g. on Ctrl-C) lets the frame being counted finish, then ends the stream.

The reader runs ahead of the caller by up to ``depth`` frames plus one per counting thread; when the caller stops
early (``break``), those are dropped and the source is closed (a generator too). A source blocked in its own
read (a camera waiting for its trigger) is not waited for: the caller's loop ends at once, and the reader
thread ends, closing the source, when that read returns.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from bcedge.runtime.counter import CountResult
from bcedge.runtime.frame_sources import Frame, open_frames
from bcedge.runtime.pipeline import DONE, Failure, drain

_STATS_LOCK = threading.Lock()


@dataclass
class Policy:
    kind: str          # "all", "latest" or "every"
    every: int = 1

    @classmethod
    def parse(cls, text: str) -> Policy:
        """``all``, ``latest`` or ``every:N`` (``every N``, ``every=N`` too)."""
        name, _, number = str(text).strip().lower().replace("=", ":").replace(" ", ":").partition(":")
        if name in ("all", "latest") and not number:
            return cls(name)
        if name == "every" and number.isdigit() and int(number) >= 1:
            return cls("every", int(number))
        raise ValueError(f"frame policy {text!r}: expected all, latest or every:N (N a whole number of at least 1)")

    def __str__(self) -> str:
        return f"every:{self.every}" if self.kind == "every" else self.kind


@dataclass
class FrameResult(CountResult):
    """A ``CountResult`` with where the frame came from and how long it took to count."""

    frame_index: int = 0
    source_ts: float | None = None   # seconds: position in a video, or an image file's mtime
    wall_time: float = 0.0           # time.time() at capture
    latency_s: float = 0.0           # capture to result
    dropped_before: int = 0          # frames dropped (policy latest) since the previous result
    corrupt_before: int = 0          # corrupt frames skipped since the previous result
    gap_s: float = 0.0               # a live source was down this long before this frame
    image: np.ndarray | None = field(default=None, repr=False)   # the frame's pixels (overlays, live view)

    def frame_dict(self) -> dict[str, Any]:
        return {"index": self.frame_index, "source_ts": None if self.source_ts is None else round(self.source_ts, 4),
                "wall_time": round(self.wall_time, 4), "latency_s": round(self.latency_s, 4),
                "dropped_before": self.dropped_before, "corrupt_before": self.corrupt_before,
                "gap_s": round(self.gap_s, 3)}

    def to_dict(self, image_id: int = 1) -> dict:
        return {"frame": self.frame_dict(), **super().to_dict(image_id)}


@dataclass
class StreamStats:
    """Running figures of a stream (read by the live view while it runs)."""

    read: int = 0
    counted: int = 0
    dropped: int = 0
    recent: list[tuple[float, float]] = field(default_factory=list)  # (perf_counter at result, latency), last 30

    def record(self, latency: float) -> None:
        with _STATS_LOCK:   # several counting threads record
            self.counted += 1
            self.recent = (self.recent + [(time.perf_counter(), latency)])[-30:]

    @property
    def fps(self) -> float:
        if len(self.recent) < 2:
            return 0.0
        span = self.recent[-1][0] - self.recent[0][0]
        return (len(self.recent) - 1) / span if span > 0 else 0.0

    @property
    def latency_s(self) -> float:
        return float(np.median([lat for _, lat in self.recent])) if self.recent else 0.0

    @property
    def drop_rate(self) -> float:
        return self.dropped / self.read if self.read else 0.0


class _Latest:
    """A one-frame mailbox: a put replaces the waiting frame (a drop)."""

    def __init__(self, stats: StreamStats) -> None:
        self._item: Any = None
        self._full = threading.Condition()
        self.stats = stats
        self.dropped_since = 0

    def put(self, item: Any, stop: threading.Event) -> bool:
        with self._full:
            while not isinstance(item, Frame) and self._item is not None:  # the end waits for the last frame
                if stop.is_set():
                    return False
                self._full.wait(0.1)
            if self._item is not None:
                self.stats.dropped += 1
                self.dropped_since += 1
            self._item = item
            self._full.notify_all()
        return True

    def get(self, stop: threading.Event) -> tuple[Any, int]:
        with self._full:
            while self._item is None and not stop.is_set():
                self._full.wait(0.1)
            item, self._item = self._item, None
            dropped, self.dropped_since = self.dropped_since, 0
            self._full.notify_all()
            return item, dropped


class _Queue:
    """A bounded queue whose puts and gets give up when the stream stops."""

    def __init__(self, depth: int) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)

    def put(self, item: Any, stop: threading.Event) -> bool:
        while not stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self, stop: threading.Event) -> tuple[Any, int]:
        while not stop.is_set():
            try:
                return self._queue.get(timeout=0.1), 0
            except queue.Empty:
                continue
        return None, 0


class _InOrder:
    """Results of several counting threads, handed out in the order their frames were taken; a thread
    that is ``ahead`` results in front of the caller waits (bounded memory)."""

    def __init__(self, ahead: int) -> None:
        self._ready: dict[int, Any] = {}
        self._next = 0
        self._changed = threading.Condition()
        self.ahead = ahead

    def put(self, seq: int, item: Any, stop: threading.Event) -> None:
        with self._changed:
            while seq - self._next >= self.ahead and not stop.is_set():
                self._changed.wait(0.1)
            self._ready[seq] = item
            self._changed.notify_all()

    def get(self, stop: threading.Event) -> Any:
        with self._changed:
            while self._next not in self._ready:
                if stop.is_set():
                    return None
                self._changed.wait(0.1)
            self._next += 1
            self._changed.notify_all()
            return self._ready.pop(self._next - 1)


def _array_frames(arrays: Iterable[np.ndarray]) -> Iterator[Frame]:
    for index, pixels in enumerate(arrays):
        yield Frame(pixels, index, None, time.time(), time.perf_counter(), f"frame {index}")


def default_workers() -> int:
    """Counting threads for a stream: 2 where the CPU has cores to spare for the second, else 1."""
    return 2 if (os.cpu_count() or 1) > 2 else 1


class FrameStream:
    """Iterate for ``FrameResult``s in frame order (see module docstring); ``stats`` runs alongside."""

    def __init__(self, counter: Any, frames: Any, policy: str | Policy = "all", depth: int = 2,
                 pace_fps: float | None = None, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.counter, self.policy, self.depth, self.workers = counter, Policy.parse(str(policy)), depth, workers
        if isinstance(frames, (str, int)) or hasattr(frames, "__fspath__"):
            frames = open_frames(frames, pace_fps)
        self.source = frames
        self.stats = StreamStats()
        self._stop = threading.Event()       # finish the frame in hand, then end
        self._abort = threading.Event()      # the caller left: everything ends now
        self._started = False
        self._take = threading.Lock()        # taking a frame and its place in the output order
        self._taken = 0
        self._ended = False

    def stop(self) -> None:
        """End after the frame being counted (Ctrl-C): its result is still delivered."""
        self._stop.set()

    def _frames(self) -> Iterator[Frame]:
        every = self.policy.every
        if hasattr(self.source, "read_frames"):
            return self.source.read_frames(every)
        return (f for f in _array_frames(self.source) if f.index % every == 0)

    def _read(self, handoff) -> None:
        try:
            for frame in self._frames():
                if self._stop.is_set() or self._abort.is_set():
                    break
                self.stats.read += 1
                if not handoff.put(frame, self._abort):
                    return
            handoff.put(DONE, self._abort)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            handoff.put(Failure(exc), self._abort)
        finally:
            close = getattr(self.source, "close", None)
            if close is not None:
                close()

    def _next_item(self, handoff) -> tuple[int, Any, int]:
        """(output position, frame or end marker, frames dropped before it), for one counting thread."""
        with self._take:
            while not self._ended:
                if self._abort.is_set():
                    return -1, None, 0
                item, dropped = (DONE, 0) if self._stop.is_set() else handoff.get(self._abort)
                if item is None:
                    continue
                self._ended = not isinstance(item, Frame)
                self._taken += 1
                return self._taken - 1, item, dropped
            return -1, None, 0   # another thread took the end

    def _count(self, handoff, results: _InOrder) -> None:
        """One counting thread: with several, one counts while another merges or prepares (the backend
        call itself is serialised by the counter)."""
        while not self._abort.is_set():
            seq, item, dropped = self._next_item(handoff)
            if item is None:
                return
            if not isinstance(item, Frame):
                results.put(seq, item, self._abort)
                return
            try:
                results.put(seq, self._count_frame(item, dropped), self._abort)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, in order
                with self._take:
                    self._ended = True
                results.put(seq, Failure(exc), self._abort)
                return

    def _count_frame(self, frame: Frame, dropped: int) -> FrameResult:
        result = self.counter.count(frame.pixels, source=frame.name)
        latency = time.perf_counter() - frame.captured
        self.stats.record(latency)
        base = {f.name: getattr(result, f.name) for f in fields(CountResult) if hasattr(result, f.name)}
        base["source"] = base.get("source") or frame.name
        return FrameResult(**base, frame_index=frame.index, source_ts=frame.source_ts, wall_time=frame.wall_time,
                           latency_s=latency, dropped_before=dropped, corrupt_before=frame.corrupt_before,
                           gap_s=frame.gap_s, image=frame.pixels)

    def __iter__(self) -> Iterator[FrameResult]:
        if self._started:
            raise RuntimeError("a FrameStream can be iterated once")
        self._started = True
        handoff = _Latest(self.stats) if self.policy.kind == "latest" else _Queue(self.depth)
        results = _InOrder(self.depth + self.workers)
        reader = threading.Thread(target=self._read, args=(handoff,), daemon=True, name="bcedge-frames")
        counting = [threading.Thread(target=self._count, args=(handoff, results), daemon=True, name=f"bcedge-count{i}")
                    for i in range(self.workers)]
        yield from drain(lambda: results.get(self._abort), counting, self._abort, detached=(reader,))


def stream(counter: Any, frames: Any, policy: str | Policy = "all", depth: int = 2,
           pace_fps: float | None = None, workers: int = 1) -> FrameStream:
    """``Counter.stream``: ``frames`` is an iterable of RGB arrays, or a source ``open_frames`` opens."""
    return FrameStream(counter, frames, policy, depth, pace_fps, workers)
