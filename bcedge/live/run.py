"""One live counting run: a source through ``Counter.stream`` into the rig's outputs (JSON lines, fields
table, overlay video, the live view), stopped cleanly by Ctrl-C.

The first Ctrl-C lets the frame being counted finish, flushes every output and ends the run as if the
source had ended (exit 0); a second one interrupts at once.
"""
from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from bcedge.report.frames import FieldTotals, JsonLines, OverlayVideo, frame_record


@dataclass
class LiveOptions:
    policy: str = "all"
    pace_fps: float | None = None           # play a file at this rate (a camera's pace)
    jsonl: Path | None = None               # None: stdout (unless ``emit_jsonl`` is off)
    emit_jsonl: bool = True
    detections: bool = False                # boxes in each JSON line
    fields: bool = False                    # each frame a field of view: per-field table, running totals
    overlay_video: Path | None = None
    max_frames: int | None = None
    workers: int = 1                        # counting threads (``bcedge.runtime.live_stream``)
    on_result: list[Callable[[Any, Any], None]] = field(default_factory=list)   # (result, stream): the live view


@dataclass
class LiveSummary:
    counted: int = 0
    read: int = 0
    dropped: int = 0
    corrupt: int = 0
    reconnects: int = 0
    gaps: list[dict] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    fields_table: str | None = None
    totals: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies or [0.0])
        return {"counted": self.counted, "read": self.read, "dropped": self.dropped, "corrupt": self.corrupt,
                "reconnects": self.reconnects, "gaps": self.gaps, "interrupted": self.interrupted,
                "fps": round(self.counted / self.seconds, 2) if self.seconds else 0.0,
                "latency_p50_s": round(float(np.percentile(lat, 50)), 4),
                "latency_p95_s": round(float(np.percentile(lat, 95)), 4), "totals": self.totals}

    def line(self) -> str:
        d = self.to_dict()
        text = (f"{d['counted']} frames counted ({d['fps']} frames/s, latency p50 {d['latency_p50_s'] * 1000:.0f} ms, "
                f"p95 {d['latency_p95_s'] * 1000:.0f} ms); {d['dropped']} dropped, {d['corrupt']} corrupt skipped")
        if self.reconnects:
            text += f", {self.reconnects} reconnects ({sum(g['seconds'] for g in self.gaps):.1f} s down)"
        return text + (" [stopped by Ctrl-C]" if self.interrupted else "")


@contextmanager
def stop_on_interrupt(stop: Callable[[], None], say: IO[str]) -> Iterator[threading.Event]:
    """While inside: the first SIGINT calls ``stop`` (the run ends after the current frame), a second raises
    ``KeyboardInterrupt``. Yields an event set once interrupted. Off the main thread it does nothing."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def handler(signum, frame):
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        print("bcedge: stopping after this frame (Ctrl-C again to abort)", file=say, flush=True)
        stop()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def run_live(counter: Any, source: Any, options: LiveOptions, say: IO[str] | None = None) -> LiveSummary:
    """Count ``source`` (a spec ``open_frames`` takes, or an opened source) into the outputs ``options``
    name; ``say`` receives progress lines (fields mode) and is stderr by default."""
    import time

    from bcedge.report.counts import legend_notes
    from bcedge.runtime.live_stream import FrameStream

    say = say or sys.stderr
    stream = FrameStream(counter, source, options.policy, pace_fps=options.pace_fps, workers=options.workers)
    classes = list(counter.meta.class_names)
    lines = JsonLines.open(options.jsonl) if options.emit_jsonl else None
    fields = FieldTotals(classes) if options.fields else None
    fps = getattr(stream.source, "fps", None) or options.pace_fps
    video = OverlayVideo(options.overlay_video, fps, classes) if options.overlay_video else None
    summary = LiveSummary()
    warmup = getattr(counter, "warmup", None)
    if warmup is not None:
        warmup()   # the first frame's latency is then the counter's, not the backend's start-up
    started = time.perf_counter()
    try:
        results = iter(stream)
        with stop_on_interrupt(stream.stop, say) as interrupted, closing(results):
            for result in results:
                running = fields.add(result) if fields else None
                if lines:
                    lines.write(frame_record(result, options.detections, running))
                if fields:
                    print(fields.line(), file=say, flush=True)
                if video:
                    video.write(result, notes=[f"frame {result.frame_index}", *legend_notes(result)])
                for callback in options.on_result:
                    callback(result, stream)
                summary.counted += 1
                summary.latencies.append(result.latency_s)
                if options.max_frames and summary.counted >= options.max_frames:
                    break
            summary.interrupted = interrupted.is_set()
    finally:
        summary.seconds = time.perf_counter() - started
        if lines:
            lines.close()
        if video:
            video.close()
    stats = getattr(stream.source, "stats", None)
    summary.read, summary.dropped = stream.stats.read, stream.stats.dropped
    if stats is not None:
        summary.corrupt, summary.reconnects, summary.gaps = stats.corrupt, stats.reconnects, list(stats.gaps)
    if fields:
        summary.fields_table, summary.totals = fields.table(), dict(fields.totals)
    return summary
