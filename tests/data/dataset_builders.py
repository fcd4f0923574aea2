"""Tiny crafted datasets for the dataset-layer tests (images written with OpenCV)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

BCCD = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "bccd"


def write_image(path: Path, width: int, height: int, channels: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(width * 1000 + height)
    shape = (height, width) if channels == 1 else (height, width, channels)
    assert cv2.imwrite(str(path), rng.integers(0, 255, shape, dtype=np.uint8))
    return path


def voc_xml(filename: str, objects: list[tuple], size: tuple[int, int] | None = (64, 48)) -> str:
    """objects: (label, xmin, ymin, xmax, ymax)."""
    parts = [f"<annotation><folder>JPEGImages</folder><filename>{filename}</filename>"]
    if size:
        parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>")
    for label, x0, y0, x1, y1 in objects:
        parts.append(f"<object><name>{label}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
                     f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")
    return "".join(parts) + "</annotation>"


def write_voc(root: Path, items: dict[str, list[tuple]], size=(64, 48), splits: dict[str, list[str]] | None = None,
              images: bool = True) -> Path:
    """items: image stem -> objects. Writes Annotations/, JPEGImages/ (PNG images) and ImageSets/Main/."""
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    for stem, objects in items.items():
        (root / "Annotations" / f"{stem}.xml").write_text(voc_xml(f"{stem}.png", objects, size))
        if images:
            write_image(root / "JPEGImages" / f"{stem}.png", *size)
    for split, stems in (splits or {}).items():
        (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(stems) + "\n")
    return root


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def write_yolo(root: Path, items: dict[str, dict[str, list[str]]], names=("RBC", "WBC", "Platelets"),
               size=(64, 48), config: str | None = None, split_first: bool = False) -> Path:
    """items: split -> image stem -> label lines ("class xc yc w h"). Writes data.yaml, images (PNG) and labels.

    Ultralytics layout (images/<split>, labels/<split>) unless ``split_first`` (Roboflow: <split>/images,
    <split>/labels, data.yaml pointing at ../<split>/images). ``config`` replaces the generated data.yaml.
    """
    lines = [f"names: {list(names)}", f"nc: {len(names)}"]
    for split, stems in items.items():
        images = root / split / "images" if split_first else root / "images" / split
        labels = root / split / "labels" if split_first else root / "labels" / split
        lines.append(f"{split}: ../{split}/images" if split_first else f"{split}: images/{split}")
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        for stem, boxes in stems.items():
            write_image(images / f"{stem}.png", *size)
            (labels / f"{stem}.txt").write_text("".join(line + "\n" for line in boxes))
    (root / "data.yaml").write_text(config if config is not None else "\n".join(lines) + "\n")
    return root
