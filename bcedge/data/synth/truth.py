"""Ground truth of a rendered smear and its COCO form.

Conventions (the project's COCO conventions): category ids 1..C in the order RBC, WBC, Platelets
[, ring]; ``bbox`` is ``[x, y, w, h]`` in pixels where pixel ``i`` spans ``[i, i + 1)``. A box is tight
around the cell's own pixels (pixel centres inside its outline) before blur, clipped to the image.
Cells overlap and are all labelled, however much of them other cells cover (stain densities add, so
every cell stays visible through its neighbours); ``overlap`` gives the share of a cell's pixels that
other cells (RBC, WBC, platelets) also cover, for anyone who wants to filter. A cell none of whose
pixel centres falls inside the image is not labelled. ``segmentation`` holds one polygon per outline
part (a ring parasite has two: ring and chromatin dot), vertices clipped to the box; ``area`` is the
exact pixel count of the mask.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bcedge.data.synth.config import RING
from bcedge.data.synth.layout import Layout


@dataclass(slots=True)
class CellTruth:
    index: int                       # position in Layout.cells
    kind: str
    box: tuple[int, int, int, int]   # x0, y0, x1, y1 (end exclusive), image pixels
    area: int                        # pixels inside the outline and the image
    overlap_px: int = 0              # of those, pixels also inside another (non-parasite) cell


def truth_from_mask(index: int, kind: str, inside: np.ndarray, x0: int, y0: int) -> CellTruth | None:
    """Box and area of a cell from its membership mask placed at (x0, y0); None when it has no pixel."""
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if len(rows) == 0:
        return None
    box = (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1)
    return CellTruth(index, kind, box, int(np.count_nonzero(inside)))


def polygons(layout: Layout, truth: CellTruth) -> list[list[float]]:
    """COCO polygons of a cell, one per outline part, clipped to its box, rounded to 0.1 px."""
    x0, y0, x1, y1 = truth.box
    out = []
    for blob in layout.cells[truth.index].blobs:
        poly = blob.polygon(layout.config.polygon_points)
        poly[:, 0] = np.clip(poly[:, 0], x0, x1)
        poly[:, 1] = np.clip(poly[:, 1], y0, y1)
        out.append([round(float(v), 1) for v in poly.reshape(-1)])
    return out


def to_coco(layout: Layout, truths: list[CellTruth], file_name: str, image_id: int = 1) -> dict:
    """The COCO dict (info, images, categories, annotations) of one synthetic smear."""
    from bcedge import __version__

    names = layout.config.class_names
    category = {name: i + 1 for i, name in enumerate(names)}
    truths = sorted(truths, key=lambda t: t.index)
    ann_id = {t.index: k + 1 for k, t in enumerate(truths)}
    annotations = []
    for t in truths:
        x0, y0, x1, y1 = t.box
        ann = {
            "id": ann_id[t.index], "image_id": image_id, "category_id": category[t.kind],
            "bbox": [x0, y0, x1 - x0, y1 - y0], "area": t.area, "iscrowd": 0,
            "segmentation": polygons(layout, t),
        }
        if t.kind == RING:
            ann["host_id"] = ann_id.get(layout.cells[t.index].look.host)
        else:
            ann["overlap"] = round(t.overlap_px / t.area, 3)
        annotations.append(ann)
    return {
        "info": {
            "description": "bcedge synthetic blood smear: for tests and benchmarks, not real data",
            "generator": f"bcedge.data.synth {__version__}",
            "seed": layout.seed,
            "config": layout.config.to_dict(),
            "style": _plain(layout.style),
            "conventions": "bbox [x, y, w, h], pixel i spans [i, i+1); tight around the cell's pixels "
                           "before blur, clipped to the image; every overlapping cell labelled; "
                           "overlap = share of the cell's pixels other cells also cover",
            "notes": list(layout.notes),
        },
        "images": [{"id": image_id, "file_name": file_name, "width": layout.width, "height": layout.height}],
        "categories": [{"id": category[n], "name": n, "supercategory": "cell"} for n in names],
        "annotations": annotations,
    }


def _plain(style) -> dict:
    from dataclasses import asdict

    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(style).items()}
