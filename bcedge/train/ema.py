"""An exponential moving average of a detector's weights (as in YOLOv5/timm's ModelEMA).

Short schedules on few images end noisy; the average of the last few hundred steps is a better model
and costs one copy of the weights. The decay ramps up so early steps are not averaged in for long.
"""
from __future__ import annotations

import copy
import math

import torch


class ModelEMA:
    def __init__(self, detector, decay: float = 0.9998, updates: int = 0, ramp: float = 2000.0) -> None:
        self.module = copy.deepcopy(detector).eval()
        self.decay, self.updates, self.ramp = decay, updates, ramp
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, detector) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.ramp))
        source = detector.model.state_dict()
        for name, value in self.module.model.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(source[name].detach(), alpha=1 - d)
            else:
                value.copy_(source[name])
