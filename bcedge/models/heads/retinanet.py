"""RetinaNet (single-stage, anchors from box statistics) on a backbone + FPN P3-P7, GroupNorm head."""
from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torchvision.models.detection import RetinaNet
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from bcedge.artifact import ModelMeta
from bcedge.models.detector import WithFPN
from bcedge.models.heads.common import anchor_generator, clip_to, decode_per_image, image_list
from bcedge.models.registry import register_head

FPN_CHANNELS = 128


def deploy(model: RetinaNet, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    features = list(model.backbone(batch).values())
    out = model.head(features)
    anchors = model.anchor_generator(image_list(batch), features)[0]
    boxes = decode_per_image(model.box_coder, out["bbox_regression"], anchors)
    return clip_to(boxes, batch), torch.sigmoid(out["cls_logits"])[..., 1:]


@register_head("retinanet", deploy)
def build(body, num_classes: int, meta: ModelMeta) -> RetinaNet:
    backbone = WithFPN(body.module, body.channels, ["1", "2", "3"], FPN_CHANNELS, LastLevelP6P7(FPN_CHANNELS, FPN_CHANNELS))
    anchors = anchor_generator(meta, levels=5)
    head = RetinaNetHead(FPN_CHANNELS, anchors.num_anchors_per_location()[0], num_classes + 1,
                         norm_layer=partial(nn.GroupNorm, 32))
    head.regression_head._loss_type = "giou"
    width, height = meta.input_size
    return RetinaNet(backbone, num_classes + 1, min(width, height), max(width, height), list(meta.mean), list(meta.std),
                     anchor_generator=anchors, head=head, score_thresh=0.05, nms_thresh=meta.nms_iou,
                     detections_per_img=meta.max_detections, topk_candidates=1000)
