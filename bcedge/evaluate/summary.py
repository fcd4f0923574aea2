"""The metrics of a set of predictions: COCO mAP, and per class the precision, recall and count error
at the model's operating thresholds."""
from __future__ import annotations

from bcedge.artifact import ModelMeta
from bcedge.data.annotations import Dataset
from bcedge.evaluate.coco_metrics import coco_metrics
from bcedge.evaluate.operating import operating_point

EVAL_SCORE_FLOOR = 0.001   # evaluation decodes every box above this, so mAP sees the whole PR curve


def summarise(data: Dataset, predictions, meta: ModelMeta) -> dict:
    """Metrics of ``predictions`` (one ``Detections`` per image of ``data``) at ``meta``'s thresholds."""
    metrics = coco_metrics(data, predictions, meta.class_names)
    thresholds = {n: meta.score_threshold(n) for n in meta.class_names}
    operating = operating_point(data, predictions, meta.class_names, thresholds)
    for name, entry in operating.items():
        metrics["per_class"][name].update({k: entry[k] for k in ("threshold", "precision", "recall")})
    metrics["count_error"] = {n: {k: operating[n][k] for k in ("count_mae", "count_mre", "count_medre", "count_bias", "predicted", "truth")}
                              for n in meta.class_names}
    metrics["nms_iou"] = meta.nms_iou
    metrics["images"] = len(data)
    return metrics
