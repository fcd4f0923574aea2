"""Pieces the heads share: anchor generators from metadata and a batch ImageList for export."""
from __future__ import annotations

import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

from bcedge.artifact import ModelMeta
from bcedge.models.anchors import anchor_config, per_level_scales


def anchor_generator(meta: ModelMeta, levels: int, scales_per_level: int = 3) -> AnchorGenerator:
    """One AnchorGenerator with ``levels`` pyramid levels, sized from ``meta.anchors`` (box statistics)."""
    config = meta.anchors if meta.anchors.get("sizes") and len(meta.anchors["sizes"]) == levels else anchor_config(None, levels)
    meta.anchors = config
    sizes = tuple(per_level_scales(s, scales_per_level) for s in config["sizes"])
    ratios = (tuple(config["aspect_ratios"]),) * levels
    return AnchorGenerator(sizes, ratios)


def image_list(batch: torch.Tensor) -> ImageList:
    size = (int(batch.shape[-2]), int(batch.shape[-1]))
    return ImageList(batch, [size] * batch.shape[0])


def clip_to(boxes: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    height, width = batch.shape[-2:]
    x = boxes[..., 0::2].clamp(0, width)
    y = boxes[..., 1::2].clamp(0, height)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def decode_per_image(box_coder, deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """BoxCoder.decode_single over a batch whose images share one anchor set: (B, A, 4)."""
    batch, count = deltas.shape[:2]
    flat = box_coder.decode_single(deltas.reshape(-1, 4), anchors.repeat(batch, 1))
    return flat.reshape(batch, count, 4)
