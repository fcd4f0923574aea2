"""From a deploy graph's raw outputs to ``Detections``: score filter, top-k, class-aware NMS.

Every backend (torch, ONNX Runtime, TensorRT) ends here, so their detections differ only by what
their graphs computed, and the thresholds tuned at evaluation are the ones the runtime uses.
"""
from __future__ import annotations

import numpy as np

from bcedge.artifact import ModelMeta
from bcedge.detections import Detections

PRE_NMS_TOPK = 3000


def class_thresholds(meta: ModelMeta, floor: float | None = None) -> np.ndarray:
    """Per-class score thresholds from the metadata, or one ``floor`` for all (evaluation uses 0.001)."""
    if floor is not None:
        return np.full(meta.num_classes, floor, dtype=np.float32)
    return np.array([meta.score_threshold(name) for name in meta.class_names], dtype=np.float32)


def decode(boxes: np.ndarray, scores: np.ndarray, thresholds: np.ndarray, nms_iou: float, max_detections: int,
           nms_backend: str = "auto", pre_nms_topk: int = PRE_NMS_TOPK) -> Detections:
    """One image: boxes (A, 4) xyxy px, scores (A, C) in 0..1 -> class-aware NMS'd detections.

    A location may yield one candidate per class above that class's threshold (as torchvision's
    single-stage postprocess does); the ``pre_nms_topk`` best candidates go to NMS.
    """
    from bcedge.runtime.nms import nms

    anchor_idx, class_idx = np.nonzero(scores > thresholds[None, :])
    if anchor_idx.size == 0:
        return Detections.empty()
    cand_scores = scores[anchor_idx, class_idx]
    if cand_scores.size > pre_nms_topk:
        top = np.argpartition(-cand_scores, pre_nms_topk)[:pre_nms_topk]
        anchor_idx, class_idx, cand_scores = anchor_idx[top], class_idx[top], cand_scores[top]
    cand = Detections(boxes[anchor_idx], cand_scores, class_idx)
    cand = cand[cand.areas() > 0]
    keep = nms(cand.xyxy, cand.scores, cand.class_ids, nms_iou, backend=nms_backend)
    return cand[np.asarray(keep[:max_detections], dtype=np.int64)]


def decode_batch(boxes: np.ndarray, scores: np.ndarray, meta: ModelMeta, floor: float | None = None,
                 nms_iou: float | None = None, nms_backend: str = "auto") -> list[Detections]:
    """A batch of raw outputs (B, A, 4), (B, A, C) -> one ``Detections`` per image."""
    thresholds = class_thresholds(meta, floor)
    iou = meta.nms_iou if nms_iou is None else nms_iou
    return [decode(b, s, thresholds, iou, meta.max_detections, nms_backend) for b, s in zip(boxes, scores)]
