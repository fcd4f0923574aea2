"""Videos for tests and benchmarks, written with OpenCV's ``VideoWriter`` (no camera needed), and a
counter double that counts coloured squares per frame and can be made slow.

Squares videos use MJPG in AVI at high quality: its colours survive well enough that the squares
counts of each frame are known (``squares_frame(i)`` draws frame ``i``).
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from bcedge.testing.squares import StubCounter, StubResult

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "sample_bccd" / "JPEGImages"


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 10.0, fourcc: str = "MJPG") -> Path:
    """Write RGB frames (all one size) to ``path``; returns it."""
    writer = None
    for frame in frames:
        if writer is None:
            height, width = frame.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
            if fourcc == "MJPG":
                writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 100)
            if not writer.isOpened():
                raise OSError(f"{path}: OpenCV cannot write {fourcc} video here")
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    if writer is None:
        raise ValueError("no frames to write")
    writer.release()
    return Path(path)


def sample_frames(n: int, size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    """``n`` RGB frames cycling through the shipped BCCD sample images, resized to ``size``."""
    images = [cv2.imread(str(p))[:, :, ::-1] for p in sorted(SAMPLES.glob("*.jpg"))]
    return [cv2.resize(images[i % len(images)], size, interpolation=cv2.INTER_AREA) for i in range(n)]


def squares_counts(i: int) -> tuple[int, int]:
    """(red, blue) squares in frame ``i`` of a squares video."""
    return 1 + i % 4, i % 3


def squares_frame(i: int, size: tuple[int, int] = (96, 64)) -> np.ndarray:
    """Frame ``i``: grey, with ``squares_counts(i)`` 8x8 red and blue squares."""
    red, blue = squares_counts(i)
    image = np.full((size[1], size[0], 3), 200, np.uint8)
    for k in range(red + blue):
        x, y = 4 + 14 * (k % 6), 4 + 14 * (k // 6)
        image[y:y + 8, x:x + 8] = (230, 20, 20) if k < red else (20, 20, 230)
    return image


def squares_video(path: str | Path, n: int, fps: float = 10.0) -> Path:
    return write_video(path, (squares_frame(i) for i in range(n)), fps)


class FrameCounter(StubCounter):
    """``StubCounter`` with the ``Counter.count(frame, source=...)`` signature; ``delay`` seconds a frame."""

    def count(self, frame: np.ndarray, source: str = "frame") -> StubResult:
        if self.delay:
            time.sleep(self.delay)
        return super().count(frame)
