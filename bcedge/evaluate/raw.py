"""Evaluation on raw model outputs (boxes, scores per image), decoded exactly as the runtime decodes,
so a torch checkpoint and its ONNX export are judged by the same yardstick; with ``tune``, the NMS
IoU and per-class thresholds are chosen on the data first."""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from bcedge.artifact import ModelMeta
from bcedge.data.annotations import Dataset
from bcedge.evaluate.coco_metrics import check_classes, coco_metrics
from bcedge.evaluate.operating import match_scores, tune_thresholds
from bcedge.evaluate.summary import EVAL_SCORE_FLOOR, summarise
from bcedge.imageio import read_image
from bcedge.imageops import fit_to_size
from bcedge.runtime.decode import decode_batch

NMS_IOU_GRID = (0.4, 0.5, 0.6, 0.7)

RawOutputs = list[tuple[np.ndarray, np.ndarray]]   # per image: boxes (A, 4), scores (A, C)


def input_images(data: Dataset, input_size: tuple[int, int], pad_value: int = 0) -> Iterable[np.ndarray]:
    """Each image as the model sees it: padded (never resized) to the input size; larger ones are refused."""
    for record in data.images:
        image = read_image(record.image_path)
        h, w = image.shape[:2]
        if w > input_size[0] or h > input_size[1]:
            raise ValueError(f"{record.image_path}: {w}x{h} is larger than the model input {input_size}; "
                             "evaluate large images with the tiling runtime (bcedge count)")
        yield fit_to_size(image, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), input_size, None, fill=pad_value)[0]


def raw_outputs(infer: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], data: Dataset,
                input_size: tuple[int, int], batch_size: int = 4, pad_value: int = 0) -> RawOutputs:
    """Run ``infer`` (uint8 batch (B, H, W, 3) -> boxes (B, A, 4), scores (B, A, C)) over a dataset."""
    out: RawOutputs = []
    batch: list[np.ndarray] = []
    for image in input_images(data, input_size, pad_value):
        batch.append(image)
        if len(batch) == batch_size:
            boxes, scores = infer(np.stack(batch))
            out.extend(zip(boxes, scores))
            batch = []
    if batch:
        boxes, scores = infer(np.stack(batch))
        out.extend(zip(boxes, scores))
    return out


def _decode(raw: RawOutputs, meta: ModelMeta, floor: float | None, nms_iou: float | None = None,
            sizes: list[tuple[int, int]] | None = None):
    """Decode each image's raw outputs; boxes are clipped to the image itself, not its padded tile."""
    out = [decode_batch(b[None], s[None], meta, floor=floor, nms_iou=nms_iou)[0] for b, s in raw]
    return [d.clip(*size) for d, size in zip(out, sizes)] if sizes else out


def evaluate_raw(raw: RawOutputs, data: Dataset, meta: ModelMeta, tune: bool = False) -> dict:
    """Metrics for raw outputs; with ``tune``, first choose the NMS IoU and per-class thresholds on ``data``
    and store them in ``meta`` (the caller saves the artifact)."""
    check_classes(data, meta.class_names)
    sizes = [(record.width, record.height) for record in data.images]
    if tune:
        trials = {iou: coco_metrics(data, _decode(raw, meta, EVAL_SCORE_FLOOR, iou, sizes), meta.class_names)["mAP50"]
                  for iou in NMS_IOU_GRID}
        meta.nms_iou = max(trials, key=lambda iou: (trials[iou], -abs(iou - 0.5)))
        low = _decode(raw, meta, EVAL_SCORE_FLOOR, sizes=sizes)
        meta.score_thresholds = tune_thresholds(match_scores(data, low, meta.class_names))
    predictions = _decode(raw, meta, EVAL_SCORE_FLOOR, sizes=sizes)
    return summarise(data, predictions, meta)
