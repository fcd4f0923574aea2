"""One box per cell: suppress boxes nested in another cell's box, by class pair.

A detector can box a white cell's nucleus lobes as extra white cells or as platelets inside the
white cell's box; their IoU with the cell's box is low (0.35-0.6), so NMS keeps them. A rule
``(inner, outer, min_containment)`` drops an ``inner`` box when at least that fraction of its area
lies inside a larger ``outer`` box. Rules travel in the artifact (``ModelMeta.suppression``),
tuned on validation data (``bcedge.evaluate.tuning``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from bcedge.boxes import box_areas, pairwise_intersection
from bcedge.detections import Detections


@dataclass(frozen=True)
class ContainmentRule:
    inner: str
    outer: str
    min_containment: float

    def to_dict(self) -> dict:
        return asdict(self)


def rules_from_meta(entries: list[dict] | None, class_names: list[str]) -> list[ContainmentRule]:
    rules = [ContainmentRule(str(e["inner"]), str(e["outer"]), float(e["min_containment"])) for e in entries or []]
    return [r for r in rules if r.inner in class_names and r.outer in class_names]


def containment(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """(N, M): the fraction of each inner box's area inside each outer box."""
    return pairwise_intersection(inner, outer) / np.maximum(box_areas(inner)[:, None], 1e-6)


def suppress_contained(dets: Detections, class_names: list[str], rules: list[ContainmentRule],
                       outer_thresholds: np.ndarray | None = None) -> Detections:
    """``dets`` without the boxes some rule finds nested in a larger box of its outer class.

    Only an outer box that would be counted (score at or above its class's ``outer_thresholds``, the
    operating thresholds) suppresses: evaluation keeps boxes down to a 0.001 floor, and a faint large
    box must not remove a confident cell inside it."""
    if not rules or not len(dets):
        return dets
    keep = np.ones(len(dets), bool)
    areas = dets.areas()
    counted = np.ones(len(dets), bool) if outer_thresholds is None else dets.scores >= outer_thresholds[dets.class_ids]
    for rule in rules:
        inner = np.flatnonzero((dets.class_ids == class_names.index(rule.inner)) & keep)
        outer = np.flatnonzero((dets.class_ids == class_names.index(rule.outer)) & counted)
        if not len(inner) or not len(outer):
            continue
        nested = containment(dets.xyxy[inner], dets.xyxy[outer]) >= rule.min_containment
        nested &= areas[outer][None, :] > areas[inner][:, None]      # only inside a larger box (never itself)
        keep[inner[nested.any(axis=1)]] = False
    return dets[keep]
