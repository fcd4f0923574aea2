"""The scale-guess network: a thumbnail in, the log of its median red-cell diameter (thumbnail px) out.

Plain 3x3 convolutions with BatchNorm (folded at export) and ReLU, five stride-2 stages and a global
average: about 12 M multiply-adds on a 160 px thumbnail, 0.4 ms in OpenCV on 2 CPU cores, so that it costs a
small part of counting even the smallest image. The first stage, at the largest resolution, has no second
convolution: it would cost a fifth of the time. Only OpenCV's DNN module runs it at count time (``bcedge.runtime.scale_prior``).
"""
from __future__ import annotations

import math
from itertools import pairwise

import torch
from torch import nn

WIDTHS = (8, 16, 24, 40, 64, 96)    # stem, then one stride-2 stage each
FIRST_GUESS_PX = 40.0               # the output's starting bias: a typical thumbnail cell


def _conv(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class ScalePriorNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = WIDTHS) -> None:
        super().__init__()
        layers = _conv(3, widths[0], 2)
        for stage, (c_in, c_out) in enumerate(pairwise(widths)):
            layers += _conv(c_in, c_out, 2) + (_conv(c_out, c_out, 1) if stage else [])
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(widths[-1], 1)
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, math.log(FIRST_GUESS_PX))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised thumbnails -> (N, 1) log cell diameter, thumbnail pixels."""
        return self.head(self.features(x))
