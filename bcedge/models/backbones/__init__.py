"""Backbone bodies, registered by name. Each returns a ``BackboneBody``: image -> C2..C5 feature maps."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from bcedge.models.registry import register_backbone

TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


@dataclass
class BackboneBody:
    """``module(x)`` returns an OrderedDict {"0": C2, "1": C3, "2": C4, "3": C5} (strides 4, 8, 16, 32)."""

    module: nn.Module
    channels: list[int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: dict = field(default_factory=dict)


def _efficientnet_lite(name: str):
    def build(pretrained: bool | str | Path = True) -> BackboneBody:
        from bcedge.models.backbones.efficientnet_lite import IMAGENET_MEAN, IMAGENET_STD, efficientnet_lite

        module, info = efficientnet_lite(name, pretrained)
        return BackboneBody(module, module.out_channels_list, IMAGENET_MEAN, IMAGENET_STD, info)

    return build


for _name in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"):
    register_backbone(_name)(_efficientnet_lite(_name))


def _load_local(model: nn.Module, pretrained: bool | str | Path, name: str) -> dict:
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


class _Taps(nn.Module):
    """Run ``layers`` in order and return the outputs of the ones named in ``taps`` as "0".."3"."""

    def __init__(self, layers: "list[tuple[str, nn.Module]]", taps: list[str]) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.taps = {name: str(i) for i, name in enumerate(taps)}

    def forward(self, x: torch.Tensor):
        from collections import OrderedDict

        out = OrderedDict()
        for name, layer in self.layers.items():
            x = layer(x)
            if name in self.taps:
                out[self.taps[name]] = x
        return out


@register_backbone("mobilenet_v3_large")
def mobilenet_v3_large(pretrained: bool | str | Path = False) -> BackboneBody:
    from torchvision.models import mobilenet_v3_large as build

    net = build(weights=None)
    info = _load_local(net, pretrained, "mobilenet_v3_large")
    layers = [(str(i), m) for i, m in enumerate(net.features)]
    return BackboneBody(_Taps(layers, ["3", "6", "12", "16"]), [24, 40, 112, 960], TORCHVISION_MEAN, TORCHVISION_STD, info)


@register_backbone("resnet50")
def resnet50(pretrained: bool | str | Path = False) -> BackboneBody:
    from torchvision.models import resnet50 as build

    net = build(weights=None)
    info = _load_local(net, pretrained, "resnet50")
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    layers = [("stem", stem), ("layer1", net.layer1), ("layer2", net.layer2), ("layer3", net.layer3), ("layer4", net.layer4)]
    return BackboneBody(_Taps(layers, ["layer1", "layer2", "layer3", "layer4"]), [256, 512, 1024, 2048], TORCHVISION_MEAN, TORCHVISION_STD, info)
