"""ResNet-50 (torchvision), tapped after each of its four stages."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from bcedge.models.backbones.body import BackboneBody, Taps
from bcedge.models.backbones.torchvision_weights import TORCHVISION_MEAN, TORCHVISION_STD, load_local
from bcedge.models.registry import register_backbone


@register_backbone("resnet50")
def resnet50(pretrained: bool | str | Path = False) -> BackboneBody:
    from torchvision.models import resnet50 as build

    net = build(weights=None)
    info = load_local(net, pretrained, "resnet50")
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    layers = [("stem", stem), ("layer1", net.layer1), ("layer2", net.layer2), ("layer3", net.layer3), ("layer4", net.layer4)]
    return BackboneBody(Taps(layers, ["layer1", "layer2", "layer3", "layer4"]), [256, 512, 1024, 2048], TORCHVISION_MEAN, TORCHVISION_STD, info)
