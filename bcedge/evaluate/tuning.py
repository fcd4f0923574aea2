"""Choosing containment rules on validation data (see ``bcedge.runtime.containment``).

Each candidate set of rules is applied to the same low-floor detections the runtime produced; the
set with the smallest white-cell plus platelet count error at the operating thresholds wins, as long
as it costs no AP50 (within ``AP_TOLERANCE``). No rule is a candidate too.
"""
from __future__ import annotations

import itertools

from bcedge.artifact import ModelMeta
from bcedge.data.annotations import Dataset
from bcedge.detections import Detections
from bcedge.evaluate.coco_metrics import coco_metrics
from bcedge.evaluate.operating import operating_point
from bcedge.runtime.containment import ContainmentRule, suppress_contained
from bcedge.runtime.decode import class_thresholds

PAIRS = (("Platelets", "WBC"), ("WBC", "WBC"))
LEVELS = (None, 0.9, 0.75, 0.6)
AP_TOLERANCE = 0.002
JUDGED = ("WBC", "Platelets")


def candidate_rules(class_names: list[str]) -> list[list[ContainmentRule]]:
    pairs = [p for p in PAIRS if p[0] in class_names and p[1] in class_names]
    out = []
    for levels in itertools.product(LEVELS, repeat=len(pairs)):
        out.append([ContainmentRule(i, o, t) for (i, o), t in zip(pairs, levels) if t is not None])
    return out


def tune_containment(data: Dataset, predictions: list[Detections], meta: ModelMeta) -> tuple[list[ContainmentRule], dict]:
    """The best rule set for ``meta``'s thresholds, and the trial table (rules -> count error)."""
    thresholds = {n: meta.score_threshold(n) for n in meta.class_names}
    operating = class_thresholds(meta)
    trials = []
    for rules in candidate_rules(meta.class_names):
        kept = [suppress_contained(d, meta.class_names, rules, operating) for d in predictions]
        point = operating_point(data, kept, meta.class_names, thresholds)
        error = sum(point[n]["count_mae"] for n in JUDGED if n in point)
        trials.append((error, len(rules), rules))
    trials.sort(key=lambda t: (t[0], t[1]))
    baseline = coco_metrics(data, predictions, meta.class_names)["mAP50"]
    chosen = []
    for error, _, rules in trials:
        if not rules:
            break
        kept = [suppress_contained(d, meta.class_names, rules, operating) for d in predictions]
        if coco_metrics(data, kept, meta.class_names)["mAP50"] >= baseline - AP_TOLERANCE:
            chosen = rules
            break
    table = {" + ".join(f"{r.inner} in {r.outer} >= {r.min_containment}" for r in rules) or "none": round(error, 4)
             for error, _, rules in trials}
    return chosen, table
