"""Frames from OpenCV ``VideoCapture``: video files, cameras, network streams, GStreamer pipelines.

A file that ends is an end. A frame that will not decode (or decodes to nothing usable) is skipped
and counted; ``max_corrupt_run`` failures in a row end a file (a damaged tail, or a container whose
frame count overstated: those are not counted as corrupt). A live source (camera,
network stream, pipeline) that stops is reopened with exponential backoff, and the gap is carried by
the next frame (``Frame.gap_s``) and kept in ``CaptureStats.gaps``.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np


class SourceError(OSError):
    """A frame source cannot be opened, or stopped for good; the message names it."""


@dataclass
class Frame:
    """One captured frame (RGB uint8) and when it was taken."""

    pixels: np.ndarray
    index: int                   # position in the source, 0-based (skipped and dropped frames included)
    source_ts: float | None      # seconds: the frame's position in a video, or an image file's mtime (epoch)
    wall_time: float             # time.time() when read
    captured: float              # time.perf_counter() when read: the start of the latency clock
    name: str = "frame"
    gap_s: float = 0.0           # a live source was down this long just before this frame
    corrupt_before: int = 0      # frames skipped as corrupt since the previous frame


@dataclass
class CaptureStats:
    """What happened while reading a source."""

    frames: int = 0
    corrupt: int = 0
    reconnects: int = 0
    gaps: list[dict[str, float]] = field(default_factory=list)   # {"at": wall time, "seconds": length}

    def to_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "corrupt": self.corrupt, "reconnects": self.reconnects,
                "gaps": [dict(g) for g in self.gaps]}


def usable(image: Any) -> bool:
    """A decoded BGR(A)/grey frame that has pixels."""
    return isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim in (2, 3) and image.size > 0


def to_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def has_gstreamer() -> bool:
    """Whether this OpenCV was built with GStreamer (pip wheels are not)."""
    return any("GStreamer:" in line and "YES" in line for line in cv2.getBuildInformation().splitlines())


class CaptureFrames:
    """Frames of one ``VideoCapture`` target. ``live``: reconnect when it stops (with ``backoff``
    seconds, doubling up to the second value, ``max_reconnects`` tries in a row; None: forever);
    ``"unless-sized"``: live unless the opened source reports a frame count (a video file behind a URL).
    ``pace_fps`` plays a file at that rate, as a camera would deliver it."""

    def __init__(self, target: str | int, name: str, kind: str, api: int = cv2.CAP_ANY, live: bool | str = False,
                 backoff: tuple[float, float] = (0.5, 8.0), max_reconnects: int | None = 10,
                 max_corrupt_run: int = 50, pace_fps: float | None = None,
                 open_capture: Callable[[Any, int], Any] = cv2.VideoCapture) -> None:
        self.target, self.name, self.kind, self.api, self.live = target, name, kind, api, live
        self.backoff, self.max_reconnects, self.max_corrupt_run = backoff, max_reconnects, max_corrupt_run
        self.pace_fps, self._open_capture = pace_fps, open_capture
        self.stats = CaptureStats()
        self._cap = self._open()
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0) or None
        count = float(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
        if live == "unless-sized":   # a URL may name a file (it has a length: it ends) or a stream (it has none)
            live = not count > 0
            self.live = live
        self.frame_count = int(count) if count > 0 and not live else None

    def _open(self):
        cap = self._open_capture(self.target, self.api)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.name}: cannot open {self.kind} (missing, unreadable, or no codec for it)")
        return cap

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> CaptureFrames:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        return self.read_frames()

    def read_frames(self, every: int = 1) -> Iterator[Frame]:
        """Yield frames 0, every, 2*every, ...; the ones between are grabbed but not decoded to pixels."""
        index, corrupt_run, corrupt_before, gap = -1, 0, 0, 0.0
        started = time.perf_counter()
        try:
            while self._cap is not None:
                index += 1
                wanted = index % every == 0
                ok = self._cap.grab()
                image = self._cap.retrieve()[1] if ok and wanted else None
                if not ok or (wanted and not usable(image)):
                    if self._ended(index):
                        if not self.live:
                            return
                        gap = self._reconnect()
                        index -= 1  # nothing was lost from a live source's numbering we can know of
                        continue
                    corrupt_run += 1
                    corrupt_before += 1
                    self.stats.corrupt += 1
                    if corrupt_run >= self.max_corrupt_run:  # a damaged tail, or a frame count that overstated
                        self.stats.corrupt -= corrupt_run
                        return
                    continue
                corrupt_run = 0
                if not wanted:
                    continue
                self._pace(started, index)
                ms = float(self._cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
                self.stats.frames += 1
                yield Frame(to_rgb(image), index, ms / 1000.0 if ms > 0 or index == 0 else None, time.time(),
                            time.perf_counter(), f"{self.name}#{index}", gap, corrupt_before)
                corrupt_before, gap = 0, 0.0
        finally:
            self.close()

    def _ended(self, index: int) -> bool:
        """A failed read is the end (or a live source stopping) unless the file holds more frames."""
        if self.live or self.frame_count is None:
            return True
        return index >= self.frame_count

    def _pace(self, started: float, index: int) -> None:
        if self.pace_fps:
            delay = started + index / self.pace_fps - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def _reconnect(self) -> float:
        """Reopen a live source that stopped, backing off; return how long it was down."""
        down = time.perf_counter()
        at = time.time()
        delay, tries = self.backoff[0], 0
        self.close()
        while True:
            tries += 1
            time.sleep(delay)
            try:
                self._cap = self._open()
                break
            except SourceError:
                if self.max_reconnects is not None and tries >= self.max_reconnects:
                    raise SourceError(f"{self.name}: {self.kind} stopped and did not come back after {tries} "
                                      f"tries ({time.perf_counter() - down:.1f} s)") from None
                delay = min(self.backoff[1], delay * 2)
        seconds = time.perf_counter() - down
        self.stats.reconnects += 1
        self.stats.gaps.append({"at": round(at, 3), "seconds": round(seconds, 3)})
        return seconds
