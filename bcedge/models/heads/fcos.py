"""FCOS (single-stage, anchor-free) on a backbone + FPN P3-P7."""
from __future__ import annotations

import torch
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from bcedge.artifact import ModelMeta
from bcedge.models.detector import WithFPN
from bcedge.models.heads.common import clip_to, image_list
from bcedge.models.registry import register_head

FPN_CHANNELS = 128


def deploy(model: FCOS, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    features = list(model.backbone(batch).values())
    out = model.head(features)
    anchors = model.anchor_generator(image_list(batch), features)[0]
    boxes = model.box_coder.decode(out["bbox_regression"], anchors.unsqueeze(0))
    scores = torch.sqrt(torch.sigmoid(out["cls_logits"]) * torch.sigmoid(out["bbox_ctrness"]))
    return clip_to(boxes, batch), scores[..., 1:]


@register_head("fcos", deploy)
def build(body, num_classes: int, meta: ModelMeta) -> FCOS:
    backbone = WithFPN(body.module, body.channels, ["1", "2", "3"], FPN_CHANNELS, LastLevelP6P7(FPN_CHANNELS, FPN_CHANNELS))
    # FCOS needs one point per location: anchors the size of each level's stride (torchvision's default).
    anchors = AnchorGenerator(((8,), (16,), (32,), (64,), (128,)), ((1.0,),) * 5)
    width, height = meta.input_size
    return FCOS(backbone, num_classes + 1, min(width, height), max(width, height), list(meta.mean), list(meta.std),
                anchor_generator=anchors, score_thresh=0.05, nms_thresh=meta.nms_iou,
                detections_per_img=meta.max_detections, topk_candidates=1000)
