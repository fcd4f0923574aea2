"""The pixel scale of annotated images: the median red-cell diameter, from boxes of whole cells.

A cell cut by the image edge has a short box, so boxes touching the border are left out. The diameter
of one box is the mean of its sides. Training brings every image to the model's working scale with
these figures (``bcedge.train.augment``), and the artifact records them (``ModelMeta.pixel_scale``).
"""
from __future__ import annotations

import numpy as np

from bcedge.data.annotations import Dataset, ImageAnnotation

SCALE_CLASS = "RBC"      # the class whose size defines the scale: the most numerous, most uniform cell
MIN_WHOLE_CELLS = 3      # fewer whole cells than this: use the source group's median instead
BORDER_PX = 2


def whole_box_diameters(boxes: np.ndarray, width: float, height: float, border: float = BORDER_PX) -> np.ndarray:
    """Diameters (mean box side) of the (N, 4) boxes that keep ``border`` px clear of the image edge."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    inside = ((boxes[:, 0] > border) & (boxes[:, 1] > border) &
              (boxes[:, 2] < width - border) & (boxes[:, 3] < height - border))
    boxes = boxes[inside]
    return ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1])) / 2


def whole_cell_diameters(record: ImageAnnotation, cell_class: str = SCALE_CLASS) -> np.ndarray:
    """Diameters of ``record``'s ``cell_class`` boxes that do not touch the image border."""
    chosen = [label == cell_class for label in record.labels]
    return whole_box_diameters(record.boxes[chosen] if len(record.boxes) else record.boxes, record.width, record.height)


def image_cell_sizes(data: Dataset, cell_class: str = SCALE_CLASS) -> np.ndarray:
    """Each image's median whole-cell diameter; images with too few whole cells take their group's
    median (then the dataset's); NaN only when the dataset has no such cells at all."""
    own = [whole_cell_diameters(r, cell_class) for r in data.images]
    by_group: dict[str, list[np.ndarray]] = {}
    for record, sizes in zip(data.images, own):
        by_group.setdefault(record.group, []).append(sizes)
    everything = np.concatenate(own) if own else np.zeros(0)
    overall = float(np.median(everything)) if everything.size else float("nan")
    group_median = {g: (float(np.median(np.concatenate(v))) if sum(map(len, v)) else overall) for g, v in by_group.items()}
    return np.array([float(np.median(s)) if len(s) >= MIN_WHOLE_CELLS else group_median[r.group]
                     for r, s in zip(data.images, own)], dtype=np.float32)


def scale_summary(data: Dataset, cell_class: str = SCALE_CLASS) -> dict:
    """Median and 10th-90th percentile of per-image cell diameters, overall and per group (for metadata)."""
    sizes = image_cell_sizes(data, cell_class)
    groups = sorted({r.group for r in data.images})

    def describe(values: np.ndarray) -> dict:
        values = values[np.isfinite(values)]
        if not values.size:
            return {}
        return {"median_px": round(float(np.median(values)), 1),
                "p10_px": round(float(np.percentile(values, 10)), 1), "p90_px": round(float(np.percentile(values, 90)), 1)}

    return {"cell_class": cell_class, **describe(sizes),
            "groups": {g: describe(sizes[[r.group == g for r in data.images]]) for g in groups}}
