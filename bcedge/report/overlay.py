"""Overlay PNGs: detections drawn on the image, one colour per class, a legend with the counts."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from bcedge.atomic import atomic_write_bytes
from bcedge.detections import Detections

# RGB, chosen to stay readable on pink/purple smears
PALETTE = [(0, 200, 255), (255, 230, 0), (0, 255, 120), (255, 90, 200), (255, 140, 0), (120, 120, 255)]
MAX_SIDE = 4096  # overlays of huge smears are downscaled to this longest side


def draw_overlay(image: np.ndarray, detections: Detections, class_names: Sequence[str],
                 notes: Sequence[str] = ()) -> np.ndarray:
    """RGB uint8 image with boxes and a count legend (plus ``notes``, e.g. the scale); images over
    ``MAX_SIDE`` px are downscaled first."""
    scale = min(1.0, MAX_SIDE / max(image.shape[:2]))
    canvas = np.ascontiguousarray(image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    thickness = max(1, round(max(canvas.shape[:2]) / 800))
    for (x0, y0, x1, y1), cid in zip((detections.xyxy * scale).round().astype(int).tolist(), detections.class_ids.tolist()):
        cv2.rectangle(canvas, (x0, y0), (x1, y1), PALETTE[cid % len(PALETTE)], thickness)
    counts = detections.counts(class_names)
    lines = [f"{name}: {counts[name]}" for name in class_names] + [f"total: {len(detections)}", *notes]
    font_scale = 0.5 * thickness
    line_h = int(22 * thickness)
    width = max(170, 10 * max(len(line) for line in lines))
    cv2.rectangle(canvas, (0, 0), (int(width * thickness), line_h * len(lines) + 8), (0, 0, 0), -1)
    for i, line in enumerate(lines):
        colour = PALETTE[i % len(PALETTE)] if i < len(class_names) else (255, 255, 255)
        cv2.putText(canvas, line, (6, line_h * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour, thickness, cv2.LINE_AA)
    return canvas


def overlay_path(folder: str | Path, name: str) -> Path:
    """Where the overlay of the input shown as ``name`` (``bcedge.report.names``) goes in ``folder``."""
    return Path(folder) / f"{name}.overlay.png"


def write_overlay(path: str | Path, image: np.ndarray, detections: Detections, class_names: Sequence[str],
                  durable: bool = False, notes: Sequence[str] = ()) -> Path:
    """Write the overlay PNG atomically (``bcedge.atomic``)."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(draw_overlay(image, detections, class_names, notes), cv2.COLOR_RGB2BGR))
    if not ok:
        raise IOError(f"{path}: could not encode the overlay PNG")
    return atomic_write_bytes(path, encoded.tobytes(), durable)


def write_source_overlay(path: str | Path, image_path: str | Path, detections: Detections,
                         class_names: Sequence[str], durable: bool = False, notes: Sequence[str] = (),
                         max_decode_pixels: int | None = None) -> Path:
    """Overlay for an image file of any size: read by strips, each downscaled to fit ``MAX_SIDE``
    (``max_decode_pixels``: the whole-decode cap it was counted under, ``bcedge.runtime.frames.decode_cap``)."""
    from bcedge.runtime.sources import open_image

    with open_image(image_path, max_decode_pixels) as src:
        scale = min(1.0, MAX_SIDE / max(src.width, src.height))
        strip = 1024
        parts = []
        for y0 in range(0, src.height, strip):
            rows = src.read_rows(y0, min(src.height, y0 + strip))
            if scale < 1.0:
                size = (max(1, round(src.width * scale)), max(1, round(rows.shape[0] * scale)))
                rows = cv2.resize(rows, size, interpolation=cv2.INTER_AREA)
            parts.append(rows)
    image = np.concatenate(parts)
    return write_overlay(path, image, detections.scale(scale, scale) if scale < 1.0 else detections, class_names,
                         durable, notes)
