"""MobileNetV3-Large (torchvision), tapped at strides 4, 8, 16 and 32."""
from __future__ import annotations

from pathlib import Path

from bcedge.models.backbones.body import BackboneBody, Taps
from bcedge.models.backbones.torchvision_weights import TORCHVISION_MEAN, TORCHVISION_STD, load_local
from bcedge.models.registry import register_backbone


@register_backbone("mobilenet_v3_large")
def mobilenet_v3_large(pretrained: bool | str | Path = False) -> BackboneBody:
    from torchvision.models import mobilenet_v3_large as build

    net = build(weights=None)
    info = load_local(net, pretrained, "mobilenet_v3_large")
    layers = [(str(i), m) for i, m in enumerate(net.features)]
    return BackboneBody(Taps(layers, ["3", "6", "12", "16"]), [24, 40, 112, 960], TORCHVISION_MEAN, TORCHVISION_STD, info)
