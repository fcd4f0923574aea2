"""One box per white cell: how many boxes a detector puts on each labelled white cell.

Nucleus lobes boxed as extra white cells or as platelets inside a white cell over-count white cells
and invent platelets. For each labelled white cell this counts the predicted white-cell boxes that
overlap it (IoU >= 0.3) and the predicted platelet boxes lying mostly inside it (containment >= 0.6).
"""
from __future__ import annotations

import numpy as np

from bcedge.data.annotations import Dataset
from bcedge.detections import Detections
from bcedge.boxes import pairwise_iou
from bcedge.runtime.containment import containment

WHITE, PLATELET = "WBC", "Platelets"


def boxes_per_white_cell(data: Dataset, predictions: list[Detections], class_names: list[str],
                         thresholds: dict[str, float]) -> dict:
    """Counts of labelled white cells by how many boxes they got (at the operating thresholds)."""
    if WHITE not in class_names:
        return {}
    white, platelet = class_names.index(WHITE), class_names.index(PLATELET) if PLATELET in class_names else -1
    histogram: dict[int, int] = {}
    for record, dets in zip(data.images, predictions):
        truth = record.boxes[[label == WHITE for label in record.labels]]
        if not len(truth):
            continue
        limit = np.array([thresholds.get(n, 0.5) for n in class_names], np.float32)
        kept = dets[dets.scores >= limit[dets.class_ids]] if len(dets) else dets
        counts = np.zeros(len(truth), int)
        boxes = kept.xyxy[kept.class_ids == white]
        if len(boxes):
            counts += (pairwise_iou(truth, boxes) >= 0.3).sum(axis=1)
        lobes = kept.xyxy[kept.class_ids == platelet]
        if len(lobes):
            counts += (containment(lobes, truth) >= 0.6).sum(axis=0)
        for n in counts.tolist():
            histogram[n] = histogram.get(n, 0) + 1
    cells = sum(histogram.values())
    return {"white_cells": cells, "boxes_histogram": dict(sorted(histogram.items())),
            "with_more_than_one_box": sum(v for k, v in histogram.items() if k > 1),
            "max_boxes": max(histogram) if histogram else 0}
