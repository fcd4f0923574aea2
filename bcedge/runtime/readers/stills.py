"""Still images read as frames: a folder's images, or a glob, in name order (a stage moving over a smear).

An image that will not read is skipped and counted as a corrupt frame; its source timestamp is the
file's modification time.
"""
from __future__ import annotations

import glob
import time
from collections.abc import Iterator
from pathlib import Path

from bcedge.imageio import IMAGE_SUFFIXES, ImageReadError, read_image
from bcedge.runtime.readers.video import CaptureStats, Frame, SourceError


def still_paths(spec: str) -> list[Path]:
    """The images a folder holds, or a glob matches, sorted by name."""
    path = Path(spec)
    found = path.iterdir() if path.is_dir() else (Path(p) for p in glob.glob(spec))
    files = sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith("."))
    if not files:
        raise SourceError(f"{spec}: no images ({', '.join(IMAGE_SUFFIXES)}) to read as frames")
    return files


class StillFrames:
    """Frames from image files; ``pace_fps`` delivers them at that rate."""

    kind = "still images"
    live = False

    def __init__(self, spec: str, pace_fps: float | None = None) -> None:
        self.name, self.files, self.pace_fps = spec, still_paths(spec), pace_fps
        self.fps, self.frame_count = pace_fps, len(self.files)
        self.stats = CaptureStats()

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Frame]:
        return self.read_frames()

    def read_frames(self, every: int = 1) -> Iterator[Frame]:
        started, corrupt = time.perf_counter(), 0
        for index in range(0, len(self.files), every):
            path = self.files[index]
            if self.pace_fps:
                time.sleep(max(0.0, started + index / self.pace_fps - time.perf_counter()))
            try:
                pixels, mtime = read_image(path), path.stat().st_mtime
            except (ImageReadError, OSError):
                corrupt += 1
                self.stats.corrupt += 1
                continue
            self.stats.frames += 1
            yield Frame(pixels, index, mtime, time.time(), time.perf_counter(), str(path), corrupt_before=corrupt)
            corrupt = 0
