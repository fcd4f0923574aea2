"""``open_frames(spec)``: a capture rig's frames from whatever the user names.

    0, "2", "/dev/video0"               a camera (V4L2 on Linux)
    "rtsp://...", "http://..."          a network stream (reconnected when it stops)
    "videotestsrc ! videoconvert ! appsink"   a GStreamer pipeline (OpenCV built with GStreamer)
    "fields/", "fields/*.png"           still images, in name order
    "run.mp4" (.avi, .mkv, ...)         a video file

Each kind is one entry of ``KINDS`` (a test and an opener), tried in order.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import cv2

from bcedge.imageio import IMAGE_SUFFIXES
from bcedge.runtime.readers.stills import StillFrames
from bcedge.runtime.readers.video import (
    CaptureFrames,
    Frame,
    SourceError,
    has_gstreamer,
)

FrameSource = CaptureFrames | StillFrames
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".ts")
NETWORK = re.compile(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp|srt)://", re.IGNORECASE)
CAMERA_PATH = re.compile(r"^/dev/video\d+$")


def is_video_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _camera(spec: str, pace_fps: float | None) -> FrameSource:
    target = int(spec) if spec.isdigit() else spec
    return CaptureFrames(target, f"camera {spec}", "camera", live=True)


def _network(spec: str, pace_fps: float | None) -> FrameSource:
    return CaptureFrames(spec, spec, "network stream", cv2.CAP_FFMPEG, live="unless-sized")


def _gstreamer(spec: str, pace_fps: float | None) -> FrameSource:
    if not has_gstreamer():
        raise SourceError(f"{spec}: a GStreamer pipeline, but this OpenCV was built without GStreamer "
                          "(pip's opencv-python is; use a distribution or self-built OpenCV)")
    return CaptureFrames(spec, "GStreamer pipeline", "GStreamer pipeline", cv2.CAP_GSTREAMER, live=True)


def _stills(spec: str, pace_fps: float | None) -> FrameSource:
    return StillFrames(spec, pace_fps)


def _video(spec: str, pace_fps: float | None) -> FrameSource:
    if not Path(spec).is_file():
        raise SourceError(f"{spec}: no such video file, image folder, camera or stream")
    return CaptureFrames(spec, spec, "video file", cv2.CAP_ANY, pace_fps=pace_fps)


def _looks_like_stills(spec: str) -> bool:
    path = Path(spec)
    return path.is_dir() or any(c in spec for c in "*?[") or path.suffix.lower() in IMAGE_SUFFIXES


KINDS: list[tuple[Callable[[str], bool], Callable[[str, float | None], FrameSource]]] = [
    (lambda s: s.isdigit() or bool(CAMERA_PATH.match(s)), _camera),
    (lambda s: bool(NETWORK.match(s)), _network),
    (lambda s: "!" in s, _gstreamer),
    (_looks_like_stills, _stills),
    (lambda s: True, _video),
]


def open_frames(spec: str | int | Path, pace_fps: float | None = None) -> FrameSource:
    """Open the frame source ``spec`` names (module docstring). ``pace_fps``: deliver a file's frames (video
    or stills) at this rate, as a camera would; live sources come at their own rate."""
    text = str(spec).strip()
    for matches, opener in KINDS:
        if matches(text):
            return opener(text, pace_fps)
    raise AssertionError("the last kind matches everything")


__all__ = ["VIDEO_SUFFIXES", "Frame", "FrameSource", "SourceError", "is_video_file", "open_frames"]
