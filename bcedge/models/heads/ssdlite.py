"""SSDlite (single-stage, depthwise head) on C3-C5 plus three extra downsampling blocks."""
from __future__ import annotations

from collections import OrderedDict
from functools import partial

import torch
from torch import nn
from torchvision.models.detection.ssd import SSD
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssdlite import SSDLiteHead, _extra_block, _normal_init

from bcedge.artifact import ModelMeta
from bcedge.models.heads.common import clip_to, decode_per_image, image_list
from bcedge.models.registry import register_head

EXTRA_CHANNELS = (256, 128, 128)


class SSDLiteFeatures(nn.Module):
    """C3, C4, C5 from the body, then extra stride-2 blocks: six maps, strides 8 to 256."""

    def __init__(self, body: nn.Module, channels: list[int]) -> None:
        super().__init__()
        norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
        self.body = body
        ins = [channels[3], *EXTRA_CHANNELS[:-1]]
        self.extra = nn.ModuleList(_extra_block(i, o, norm) for i, o in zip(ins, EXTRA_CHANNELS))
        _normal_init(self.extra)
        self.out_channels = [channels[1], channels[2], channels[3], *EXTRA_CHANNELS]

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        features = self.body(x)
        maps = [features["1"], features["2"], features["3"]]
        for block in self.extra:
            maps.append(block(maps[-1]))
        return OrderedDict((str(i), m) for i, m in enumerate(maps))


def deploy(model: SSD, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    features = list(model.backbone(batch).values())
    out = model.head(features)
    anchors = model.anchor_generator(image_list(batch), features)[0]
    boxes = decode_per_image(model.box_coder, out["bbox_regression"], anchors)
    return clip_to(boxes, batch), torch.softmax(out["cls_logits"], dim=-1)[..., 1:]


def _scales(meta: ModelMeta, maps: int) -> list[float]:
    """Default-box scales (fractions of the input's short side) spanning the dataset's object sizes."""
    lo, hi = meta.anchors.get("size_range", (24.0, 260.0))
    short = min(meta.input_size)
    return [lo / short * (hi / lo) ** (i / (maps - 1)) for i in range(maps)] + [min(1.0, 1.2 * hi / short)]


@register_head("ssdlite", deploy)
def build(body, num_classes: int, meta: ModelMeta) -> SSD:
    backbone = SSDLiteFeatures(body.module, body.channels)
    maps = len(backbone.out_channels)
    anchors = DefaultBoxGenerator([[2]] * maps, scales=_scales(meta, maps))
    norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    head = SSDLiteHead(backbone.out_channels, anchors.num_anchors_per_location(), num_classes + 1, norm)
    width, height = meta.input_size
    model = SSD(backbone, anchors, (height, width), num_classes + 1, list(meta.mean), list(meta.std), head=head,
                score_thresh=0.05, nms_thresh=meta.nms_iou, detections_per_img=meta.max_detections, topk_candidates=1000)
    return model
