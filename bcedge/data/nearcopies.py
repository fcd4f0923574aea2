"""Near-copies between datasets: the same smear frame in two datasets (re-annotated, re-encoded).

TXL-PBC re-annotates BCCD frames, so a BCCD validation frame can sit in TXL-PBC's training split;
training on it would make BCCD validation figures dishonest. Frames are compared as small grey
thumbnails, normalised for brightness and contrast; flips and turns count as copies too.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

THUMB = (32, 32)
MAX_MEAN_ABS_DIFF = 0.25   # in units of the thumbnail's standard deviation (unrelated frames: about 1)


def thumbnail(path: str | Path) -> np.ndarray | None:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        return None
    small = cv2.resize(image, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)
    return (small - small.mean()) / (small.std() + 1e-6)


def _variants(thumb: np.ndarray) -> list[np.ndarray]:
    turns = [np.rot90(thumb, k) for k in range(4)]
    return turns + [t[:, ::-1] for t in turns]


def near_copies(paths: list[Path], references: list[Path], threshold: float = MAX_MEAN_ABS_DIFF) -> dict[Path, Path]:
    """{path: the reference it copies} for every ``path`` whose frame matches a reference frame."""
    ref_thumbs = [(p, t) for p in references if (t := thumbnail(p)) is not None]
    if not ref_thumbs:
        return {}
    stack = np.stack([t for _, t in ref_thumbs]).reshape(len(ref_thumbs), -1)
    found: dict[Path, Path] = {}
    for path in paths:
        thumb = thumbnail(path)
        if thumb is None:
            continue
        distances = np.min([np.abs(stack - v.reshape(1, -1)).mean(axis=1) for v in _variants(thumb)], axis=0)
        if distances.min() <= threshold:
            found[Path(path)] = ref_thumbs[int(np.argmin(distances))][0]
    return found
