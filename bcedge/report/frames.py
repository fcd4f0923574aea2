"""Reports of a stream of frames: one JSON line per frame, running totals for fields of view, an
overlay video.

A JSON line (``frame_record``)::

    {"frame": {"index": 12, "source_ts": 1.2, "wall_time": 1767225600.123, "latency_s": 0.081,
               "dropped_before": 0, "corrupt_before": 0, "gap_s": 0.0},
     "source": "run.mp4#12", "width": 640, "height": 480, "counts": {"RBC": 41, ...}, "total": 44,
     "flags": [], "scale": {...}, "timings": {...},
     "running_totals": {"RBC": 503, ...}}          # fields mode: the sum over fields so far

With detections on, each line also carries COCO-style ``detections`` (image id = frame index + 1).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from bcedge.atomic import temp_path
from bcedge.report.counts import report_table, result_entry


def frame_record(result: Any, detections: bool = False, running_totals: dict[str, int] | None = None) -> dict:
    """The JSON line of one ``FrameResult``."""
    entry = result_entry(result.source or f"frame {result.frame_index}", result, detections=detections,
                         image_id=result.frame_index + 1)
    entry.pop("status", None)
    if not detections:
        entry["timings"] = {k: round(float(v), 4) for k, v in (result.timings or {}).items()}
    record = {"frame": result.frame_dict(), "source": entry.pop("path"), **entry}
    if running_totals is not None:
        record["running_totals"] = dict(running_totals)
    return record


class JsonLines:
    """One JSON object a line, flushed at once (a watcher sees each frame as it is counted)."""

    def __init__(self, handle: IO[str], owned: bool = False) -> None:
        self.handle, self.owned = handle, owned

    @classmethod
    def open(cls, path: str | Path | None) -> JsonLines:
        """``path``, or stdout when None."""
        import sys

        if path is None:
            return cls(sys.stdout)
        return cls(open(path, "w", encoding="utf-8"), owned=True)

    def write(self, record: dict) -> None:
        self.handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.flush()
        if self.owned:
            os.fsync(self.handle.fileno())
            self.handle.close()


class FieldTotals:
    """Fields of view of one smear (one frame each): a row per field and the running totals."""

    def __init__(self, class_names: Sequence[str]) -> None:
        self.classes = list(class_names)
        self.totals = dict.fromkeys(self.classes, 0)
        self.rows: list[dict[str, Any]] = []

    def add(self, result: Any) -> dict[str, int]:
        counts = result.counts
        for name, value in counts.items():
            self.totals[name] = self.totals.get(name, 0) + int(value)
        self.rows.append({"path": f"field {len(self.rows) + 1} (frame {result.frame_index})", "counts": dict(counts),
                          "total": sum(counts.values()), "flags": list(result.flags or [])})
        return dict(self.totals)

    def line(self) -> str:
        """Running totals in one line, for a terminal."""
        total = sum(self.totals.values())
        return f"fields {len(self.rows)}: " + ", ".join(f"{k} {v}" for k, v in self.totals.items()) + f", total {total}"

    def table(self) -> str:
        return report_table({"classes": self.classes, "images": self.rows, "totals": self.totals,
                             "total": sum(self.totals.values())})


class OverlayVideo:
    """Frames with their boxes and counts (``bcedge.report.overlay.draw_overlay``) as a video, written
    beside the target and moved onto it when closed (an interrupted run leaves no half file)."""

    def __init__(self, path: str | Path, fps: float | None, class_names: Sequence[str]) -> None:
        self.path, self.fps, self.classes = Path(path), fps or 10.0, list(class_names)
        suffix = self.path.suffix.lower()
        self.tmp = temp_path(self.path).with_suffix(suffix)   # the container follows the suffix
        self.fourcc = "mp4v" if suffix in (".mp4", ".m4v", ".mov") else "MJPG"
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, result: Any, notes: Sequence[str] = ()) -> None:
        from bcedge.report.overlay import draw_overlay

        canvas = draw_overlay(result.image, result.detections, self.classes, notes)
        if self._writer is None:
            self._size = (canvas.shape[1], canvas.shape[0])
            self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, self._size)
            if not self._writer.isOpened():
                raise OSError(f"{self.path}: OpenCV cannot write a {self.fourcc} video here")
        if (canvas.shape[1], canvas.shape[0]) != self._size:
            canvas = cv2.resize(canvas, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(np.ascontiguousarray(canvas[:, :, ::-1]))
        self.frames += 1

    def close(self) -> Path | None:
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        os.replace(self.tmp, self.path)
        return self.path
