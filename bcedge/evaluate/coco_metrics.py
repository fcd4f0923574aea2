"""COCO metrics with pycocotools, per-class AP, and PR curves (no torch)."""
from __future__ import annotations

import contextlib
import io

import numpy as np

from bcedge.data.annotations import Dataset
from bcedge.detections import Detections


def check_classes(data: Dataset, class_names: list[str]) -> None:
    """A model for other classes gives an error naming the classes it cannot detect."""
    unknown = sorted({label for record in data.images for label in record.labels} - set(class_names))
    if unknown:
        raise ValueError(
            f"the dataset has classes {unknown} that the model does not know (model classes: {class_names})"
        )


def _coco_gt(data: Dataset, class_names: list[str]) -> dict:
    images, annotations = [], []
    for image_id, record in enumerate(data.images, start=1):
        images.append({"id": image_id, "width": record.width, "height": record.height, "file_name": record.name})
        for box, label in zip(record.boxes.tolist(), record.labels):
            x0, y0, x1, y1 = box
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": class_names.index(label) + 1,
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(class_names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_metrics(data: Dataset, predictions: list[Detections], class_names: list[str], max_dets: int = 300) -> dict:
    """mAP@[.5:.95], mAP50, mAP75, per-class AP/AP50, and PR curves at IoU 0.5 (``pr_curves``)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    check_classes(data, class_names)
    if len(predictions) != len(data):
        raise ValueError(f"{len(predictions)} predictions for {len(data)} images")
    gt = COCO()
    gt.dataset = _coco_gt(data, class_names)
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    results = [entry for image_id, dets in enumerate(predictions, start=1) for entry in dets.to_coco(image_id, class_names)]
    empty = {"mAP": 0.0, "mAP50": 0.0, "mAP75": 0.0, "per_class": {n: {"AP": 0.0, "AP50": 0.0} for n in class_names},
             "pr_curves": {}}
    if not results:
        return empty
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.params.maxDets = [1, 10, max_dets]
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"]  # [IoU thresholds, recall points, classes, areas, maxDets]
    per_class, curves = {}, {}
    for k, name in enumerate(class_names):
        p_all = precision[:, :, k, 0, -1]
        p50 = precision[0, :, k, 0, -1]
        has_gt = bool((p_all > -1).any())
        per_class[name] = {"AP": round(float(p_all[p_all > -1].mean()), 4) if has_gt else None,
                           "AP50": round(float(p50[p50 > -1].mean()), 4) if has_gt else None}
        curves[name] = {"recall": evaluator.params.recThrs.tolist(), "precision": np.clip(p50, 0, 1).tolist()}
    # COCO's summarize() reads its first line at maxDets=100 whatever params say; read the array directly.
    at_max = precision[..., 0, -1]  # [IoU, recall, class]
    headline = {key: _mean_valid(at_max[rows]) for key, rows in (("mAP", slice(None)), ("mAP50", 0), ("mAP75", 5))}
    return {**headline, "per_class": per_class, "pr_curves": curves}


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return round(float(valid.mean()), 4) if valid.size else 0.0
