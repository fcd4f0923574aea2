"""What every backbone gives a head: a body returning C2..C5 feature maps, and how to feed it."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class BackboneBody:
    """``module(x)`` returns an OrderedDict {"0": C2, "1": C3, "2": C4, "3": C5} (strides 4, 8, 16, 32)."""

    module: nn.Module
    channels: list[int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: dict = field(default_factory=dict)


class Taps(nn.Module):
    """Run ``layers`` in order and return the outputs of the ones named in ``taps`` as "0".."3"."""

    def __init__(self, layers: "list[tuple[str, nn.Module]]", taps: list[str]) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.taps = {name: str(i) for i, name in enumerate(taps)}

    def forward(self, x: torch.Tensor):
        out = OrderedDict()
        for name, layer in self.layers.items():
            x = layer(x)
            if name in self.taps:
                out[self.taps[name]] = x
        return out
