"""One box per white cell: how many boxes a detector puts on each labelled white cell.

Nucleus lobes boxed as extra white cells or as platelets inside a white cell over-count white cells
and invent platelets. For each labelled white cell this counts the predicted white-cell boxes that
overlap it (IoU >= 0.3) and the predicted platelet boxes that are lobes: mostly inside it
(containment >= 0.6), mostly inside the white-cell box the detector drew for it too, and not a
labelled platelet (IoU >= 0.5). Platelets do lie on and beside white cells; one that the labels
name, or that sits outside the detected cell in a loosely drawn label box, is a cell, not a lobe.
"""
from __future__ import annotations

import numpy as np

from bcedge.data.annotations import Dataset
from bcedge.detections import Detections
from bcedge.boxes import pairwise_iou
from bcedge.runtime.containment import containment

WHITE, PLATELET = "WBC", "Platelets"
SAME_CELL_IOU, LOBE_CONTAINMENT, LABELLED_IOU = 0.3, 0.6, 0.5


def boxes_per_white_cell(data: Dataset, predictions: list[Detections], class_names: list[str],
                         thresholds: dict[str, float]) -> dict:
    """Counts of labelled white cells by how many boxes they got (at the operating thresholds)."""
    if WHITE not in class_names:
        return {}
    white, platelet = class_names.index(WHITE), class_names.index(PLATELET) if PLATELET in class_names else -1
    limit = np.array([thresholds.get(n, 0.5) for n in class_names], np.float32)
    histogram: dict[int, int] = {}
    labelled_platelets_on_white = 0
    for record, dets in zip(data.images, predictions):
        truth = record.boxes[[label == WHITE for label in record.labels]]
        if not len(truth):
            continue
        kept = dets[dets.scores >= limit[dets.class_ids]] if len(dets) else dets
        whites, platelets = kept.xyxy[kept.class_ids == white], kept.xyxy[kept.class_ids == platelet]
        same_cell = pairwise_iou(truth, whites) >= SAME_CELL_IOU if len(whites) else np.zeros((len(truth), 0), bool)
        counts = same_cell.sum(axis=1)
        if len(platelets):
            labelled = record.boxes[[label == PLATELET for label in record.labels]]
            lobes, on_white = _lobes(truth, whites, same_cell, platelets, labelled)
            counts, labelled_platelets_on_white = counts + lobes, labelled_platelets_on_white + on_white
        for n in counts.tolist():
            histogram[n] = histogram.get(n, 0) + 1
    cells = sum(histogram.values())
    return {"white_cells": cells, "boxes_histogram": dict(sorted(histogram.items())),
            "with_more_than_one_box": sum(v for k, v in histogram.items() if k > 1),
            "max_boxes": max(histogram) if histogram else 0,
            "labelled_platelets_on_white_cells": labelled_platelets_on_white}


def _lobes(truth: np.ndarray, whites: np.ndarray, same_cell: np.ndarray, platelets: np.ndarray,
           labelled: np.ndarray) -> tuple[np.ndarray, int]:
    """Platelet boxes that are lobes, per labelled white cell, and how many labelled platelets lie on one."""
    is_labelled = (pairwise_iou(platelets, labelled) >= LABELLED_IOU).any(axis=1) if len(labelled) else np.zeros(len(platelets), bool)
    inside = containment(platelets, truth) >= LOBE_CONTAINMENT                     # (platelets, truth)
    if len(whites):    # inside the detected box of that cell too (a cell the detector missed: the label alone)
        in_detected = (containment(platelets, whites) >= LOBE_CONTAINMENT).astype(int) @ same_cell.T.astype(int) > 0
        inside &= in_detected | ~same_cell.any(axis=1)[None, :]
    return (inside & ~is_labelled[:, None]).sum(axis=0), int((inside & is_labelled[:, None]).any(axis=1).sum())
