"""Faster R-CNN as one fixed-shape deploy graph that ONNX Runtime runs and TensorRT's parser accepts.

torchvision's inference path does not export well: proposal selection loops over images with
data-dependent sizes, NMS returns a variable number of boxes, and MultiScaleRoIAlign exports an ``If``
node. This graph keeps every shape fixed for a given input size:

1. backbone + FPN + RPN head; proposals decoded against the constant anchors and clipped;
2. the ``pre_nms_top_n`` best proposals of each pyramid level (TopK, like torchvision);
3. *Fast NMS* (all pairs at once, as in YOLACT) per level at the RPN's IoU, then the ``post_nms_top_n``
   best survivors (TopK). Fast NMS also drops a box whose suppressor was itself suppressed, so it keeps
   slightly fewer proposals than greedy NMS; the runtime's final NMS is unchanged;
4. RoIAlign on every FPN level for every proposal (ONNX ``RoiAlign`` with batch indices, so the batch
   stays dynamic), the level of each proposal chosen by torchvision's level mapper with a mask instead
   of a branch;
5. box head and predictor, per-class box decoding, softmax.

Outputs follow the single-stage contract so the runtime decodes all heads alike: each (proposal,
class) pair is one row, boxes (B, K*C, 4) with that class's box and scores (B, K*C, C) holding that
class's score in its own column and 0 elsewhere.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torchvision.models.detection.faster_rcnn import FasterRCNN
from torchvision.ops import boxes as box_ops
from torchvision.ops import roi_align

from bcedge.models.heads.common import clip_to, image_list

CANONICAL_SCALE, CANONICAL_LEVEL, LEVEL_EPS = 224.0, 4.0, 1e-6


def fast_nms_keep(boxes: torch.Tensor, scores: torch.Tensor, iou: float) -> torch.Tensor:
    """(B, N, 4) boxes sorted by descending ``scores`` (B, N) -> float mask (B, N) of boxes that no
    higher-scored box overlaps by more than ``iou``."""
    count = boxes.shape[1]
    area = (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    lt = torch.max(boxes[:, :, None, :2], boxes[:, None, :, :2])
    rb = torch.min(boxes[:, :, None, 2:], boxes[:, None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    overlap = inter / (area[:, :, None] + area[:, None, :] - inter).clamp(min=1e-6)
    # [i, j] = 1 where i ranks above j; built in numpy so the export holds a constant, not a Trilu node
    earlier = torch.from_numpy(np.triu(np.ones((count, count), np.float32), 1)).to(boxes.device, boxes.dtype)
    worst = (overlap * earlier).amax(dim=1)
    return (worst <= iou).to(scores.dtype)


def _gather(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values (B, N, D), index (B, K) -> (B, K, D)."""
    return torch.gather(values, 1, index.unsqueeze(-1).expand(-1, -1, values.shape[-1]))


def select_proposals(model: FasterRCNN, proposals: torch.Tensor, objectness: torch.Tensor,
                     per_level: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k per level, Fast NMS per level, top ``post_nms_top_n`` overall: proposals (B, K, 4) and a
    mask (B, K) that is 0 for the filler rows when fewer than K proposals survive NMS."""
    pre_nms, post_nms = model.rpn._pre_nms_top_n["testing"], model.rpn._post_nms_top_n["testing"]
    kept_boxes, kept_scores = [], []
    start = 0
    for count in per_level:
        k = min(pre_nms, count)
        scores, index = objectness[:, start:start + count].topk(k, dim=1)
        boxes = _gather(proposals[:, start:start + count], index)
        probs = torch.sigmoid(scores)
        keep = fast_nms_keep(boxes, probs, model.rpn.nms_thresh)
        kept_boxes.append(boxes)
        kept_scores.append(probs * keep - (1 - keep))    # suppressed: -1, below every real score
        start += count
    boxes, scores = torch.cat(kept_boxes, 1), torch.cat(kept_scores, 1)
    top = min(post_nms, boxes.shape[1])
    best, index = scores.topk(top, dim=1)
    return _gather(boxes, index), (best >= 0).to(boxes.dtype)


def multiscale_roi_align(model: FasterRCNN, features: dict, rois: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """RoIAlign of (B, K, 4) proposals on the pooler's FPN levels, each proposal on its own level."""
    pooler = model.roi_heads.box_roi_pool
    maps = [features[name] for name in pooler.featmap_names]
    scales = [2.0 ** round(math.log2(m.shape[-2] / batch.shape[-2])) for m in maps]
    k_min, k_max = -math.log2(scales[0]), -math.log2(scales[-1])
    count = rois.shape[0] * rois.shape[1]
    flat = rois.reshape(-1, 4)
    # image index of each roi, by broadcasting (an expand would freeze the traced batch size)
    index = (torch.arange(rois.shape[0], dtype=flat.dtype, device=flat.device)[:, None] + torch.zeros_like(rois[..., 0])).reshape(-1)
    boxes = torch.cat([index[:, None], flat], dim=1)
    side = torch.sqrt(box_ops.box_area(flat).clamp(min=0))
    level = torch.floor(CANONICAL_LEVEL + torch.log2(side / CANONICAL_SCALE) + LEVEL_EPS).clamp(k_min, k_max) - k_min
    out = 0
    for i, (feature, scale) in enumerate(zip(maps, scales)):
        pooled = roi_align(feature, boxes, pooler.output_size, spatial_scale=scale,
                           sampling_ratio=pooler.sampling_ratio, aligned=False)
        out = out + pooled * (level == i).to(pooled.dtype).view(count, 1, 1, 1)
    return out


def faster_rcnn_deploy(model: FasterRCNN, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised batch (B, 3, H, W) -> boxes (B, K*C, 4), scores (B, K*C, C); see the module docstring."""
    features = model.backbone(batch)
    levels = list(features.values())
    objectness, deltas = model.rpn.head(levels)
    anchors = model.rpn.anchor_generator(image_list(batch), levels)[0]
    per_level = [o.shape[1] * o.shape[2] * o.shape[3] for o in objectness]
    images = batch.shape[0]
    flat_obj = torch.cat([o.permute(0, 2, 3, 1).reshape(images, -1) for o in objectness], 1)
    flat_deltas = torch.cat([d.view(images, -1, 4, d.shape[2], d.shape[3]).permute(0, 3, 4, 1, 2).reshape(images, -1, 4)
                             for d in deltas], 1)
    proposals = model.rpn.box_coder.decode_single(flat_deltas.reshape(-1, 4), anchors.repeat(images, 1))
    proposals = clip_to(proposals.reshape(images, -1, 4), batch)
    rois, valid = select_proposals(model, proposals, flat_obj, per_level)
    pooled = multiscale_roi_align(model, features, rois, batch)
    logits, regression = model.roi_heads.box_predictor(model.roi_heads.box_head(pooled))
    classes = logits.shape[1] - 1
    boxes = model.roi_heads.box_coder.decode_single(regression, rois.reshape(-1, 4)).reshape(-1, classes + 1, 4)
    # filler rows (suppressed proposals, in an order no two runtimes need agree on) become zeros
    valid = valid.reshape(-1, 1)
    boxes = (clip_to(boxes[:, 1:], batch) * valid[:, :, None]).reshape(images, -1, 4)
    scores = torch.softmax(logits, dim=-1)[:, 1:] * valid
    eye = torch.eye(classes, dtype=scores.dtype, device=scores.device)
    one_hot = (scores[:, :, None] * eye).reshape(images, -1, classes)   # row (k, c): score c in column c
    return boxes, one_hot
