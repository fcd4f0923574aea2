"""Helpers for the export-road tests: the tiny model size, classes and a synthetic VOC dataset."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

CLASSES = ["RBC", "WBC", "Platelets"]
SIZE = (64, 64)   # multiples of 32; the smallest the FPN levels allow


def _smear(rng: np.random.Generator, width: int, height: int, objects: list[tuple]) -> np.ndarray:
    image = np.full((height, width, 3), (200, 170, 190), np.uint8)
    for label, x0, y0, x1, y1 in objects:
        colour = {"RBC": (190, 80, 100), "WBC": (90, 50, 150), "Platelets": (120, 60, 140)}[label]
        cv2.ellipse(image, ((x0 + x1) // 2, (y0 + y1) // 2), ((x1 - x0) // 2, (y1 - y0) // 2), 0, 0, 360, colour, -1)
    noise = rng.integers(-6, 7, image.shape)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def write_tiny_voc(root: Path, images: int = 6, size: tuple[int, int] = (160, 128), seed: int = 0) -> Path:
    """A VOC folder of synthetic smears: RBCs everywhere, a WBC in every third image, one platelet in one image."""
    rng = np.random.default_rng(seed)
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    width, height = size
    for i in range(images):
        objects = []
        for _ in range(5):
            x, y = int(rng.integers(0, width - 24)), int(rng.integers(0, height - 24))
            objects.append(("RBC", x, y, x + 22, y + 22))
        if i % 3 == 0:
            objects.append(("WBC", 10, 10, 50, 50))
        if i == images - 1:
            objects.append(("Platelets", width - 20, height - 20, width - 10, height - 10))
        cv2.imwrite(str(root / "JPEGImages" / f"img{i}.png"), _smear(rng, width, height, objects)[:, :, ::-1])
        parts = [f"<annotation><filename>img{i}.png</filename><size><width>{width}</width>"
                 f"<height>{height}</height><depth>3</depth></size>"]
        parts += [f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax>"
                  "</bndbox></object>" for n, a, b, c, d in objects]
        (root / "Annotations" / f"img{i}.xml").write_text("".join(parts) + "</annotation>")
    return root
