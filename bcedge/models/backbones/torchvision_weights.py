"""Weights for the torchvision backbones (MobileNetV3, ResNet): none are packaged here, so random init
or a local torchvision-format file; and the normalisation those weights expect."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


def load_local(model: nn.Module, pretrained: bool | str | Path, name: str) -> dict:
    """torchvision backbones have no packaged weights here: random init, or a local torchvision file."""
    if pretrained is True or not pretrained:
        return {"file": None, "source": "random init (no packaged ImageNet weights for this backbone)"}
    from bcedge.models.backbones.efficientnet_lite import sha256_of

    path = Path(pretrained)
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if len(missing) == len(model.state_dict()):
        raise ValueError(f"{path}: no parameter matches a torchvision {name} (is it the right file?)")
    return {"file": path.name, "sha256": sha256_of(path), "source": "local torchvision file", "missing": len(missing)}
