"""FCOS-Lite: a light anchor-free head designed for blood cells, on a 3-level light FPN.

Cells come in few sizes, sit densely and look alike, so the head is small where FCOS is wide:
- pyramid levels P3-P5 only (strides 8, 16, 32): at the model's working scale (red cells about
  50 px, see ``bcedge.runtime.scale``) every cell falls in FCOS's P3/P4 ranges; P5 adds context;
- 64 channels and depthwise-separable convolutions with BatchNorm (which folds into the convolutions
  at export), in place of FCOS's 128-channel 3x3 convolutions with GroupNorm over 5 levels;
- decoupled classification and box towers, one per level (BatchNorm statistics are per level);
- a deploy graph with no anchor constants: the point grid is built from the feature shapes, so one
  ONNX file runs any tile size that is a multiple of 32 (``ModelMeta.dynamic_input``).
Training reuses torchvision's FCOS (targets, focal + GIoU + centerness losses, postprocess).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead

from bcedge.artifact import ModelMeta
from bcedge.models.heads.common import clip_to
from bcedge.models.registry import register_head

CHANNELS = 64
TOWER_DEPTH = 2
LEVELS = ("1", "2", "3")          # backbone taps at strides 8, 16, 32
STRIDES = (8, 16, 32)


def separable(cin: int, cout: int) -> nn.Sequential:
    """3x3 depthwise + 1x1 pointwise, each with BatchNorm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


def tower(channels: int, depth: int) -> nn.Sequential:
    return nn.Sequential(*[separable(channels, channels) for _ in range(depth)])


class LightFPN(nn.Module):
    """Backbone taps -> 1x1 laterals, top-down sum, one separable convolution per level."""

    def __init__(self, body: nn.Module, channels: list[int], use=LEVELS, out_channels: int = CHANNELS) -> None:
        super().__init__()
        self.body, self.use, self.out_channels = body, list(use), out_channels
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels[int(k)], out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
            for k in self.use)
        self.smooth = nn.ModuleList(separable(out_channels, out_channels) for _ in self.use)

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        features = self.body(x)
        laterals = [conv(features[k]) for conv, k in zip(self.lateral, self.use)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + nn.functional.interpolate(
                laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest")
        return OrderedDict((k, smooth(p)) for k, smooth, p in zip(self.use, self.smooth, laterals))


class LightFCOSHead(FCOSHead):
    """FCOSHead's losses and prediction layers, fed by light per-level towers (no GroupNorm)."""

    def __init__(self, channels: int, num_classes: int, levels: int, depth: int = TOWER_DEPTH) -> None:
        super().__init__(channels, 1, num_classes, num_convs=0)   # num_convs=0: identity towers inside
        self.cls_towers = nn.ModuleList(tower(channels, depth) for _ in range(levels))
        self.reg_towers = nn.ModuleList(tower(channels, depth) for _ in range(levels))

    def forward(self, x: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        cls_logits = self.classification_head([t(f) for t, f in zip(self.cls_towers, x)])
        bbox_regression, bbox_ctrness = self.regression_head([t(f) for t, f in zip(self.reg_towers, x)])
        return {"cls_logits": cls_logits, "bbox_regression": bbox_regression, "bbox_ctrness": bbox_ctrness}


def points(features: list[torch.Tensor], strides=STRIDES) -> torch.Tensor:
    """FCOS's per-location anchors (one box of the level's stride, centred on the location) for any
    feature sizes, in the same order and at the same places as torchvision's AnchorGenerator."""
    anchors = []
    for feature, stride in zip(features, strides):
        height, width = feature.shape[-2:]
        ys = torch.arange(height, device=feature.device, dtype=torch.float32) * stride
        xs = torch.arange(width, device=feature.device, dtype=torch.float32) * stride
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")
        centres = torch.stack([cx.reshape(-1), cy.reshape(-1)], dim=1)
        half = stride / 2
        anchors.append(torch.cat([centres - half, centres + half], dim=1))
    return torch.cat(anchors)


def deploy(model: FCOS, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    features = list(model.backbone(batch).values())
    out = model.head(features)
    boxes = model.box_coder.decode(out["bbox_regression"], points(features).unsqueeze(0))
    scores = torch.sqrt(torch.sigmoid(out["cls_logits"]) * torch.sigmoid(out["bbox_ctrness"]))
    return clip_to(boxes, batch), scores[..., 1:]


@register_head("fcos_lite", deploy)
def build(body, num_classes: int, meta: ModelMeta) -> FCOS:
    backbone = LightFPN(body.module, body.channels)
    meta.dynamic_input, meta.stride = True, max(STRIDES)
    anchors = AnchorGenerator(tuple((s,) for s in STRIDES), ((1.0,),) * len(STRIDES))
    head = LightFCOSHead(CHANNELS, num_classes + 1, len(STRIDES))   # class 0: background
    width, height = meta.input_size
    return FCOS(backbone, num_classes + 1, min(width, height), max(width, height), list(meta.mean), list(meta.std),
                anchor_generator=anchors, head=head, score_thresh=0.05, nms_thresh=meta.nms_iou,
                detections_per_img=meta.max_detections, topk_candidates=1000)
