"""Quantization-aware fine-tuning for the TensorRT INT8 target (``bcedge quantize --target tensorrt``).

TensorRT's explicit INT8 is symmetric: each convolution's input is rounded to signed 8-bit steps
(zero point 0) of one scale per tensor, its weights to steps of one scale per output channel.
Post-training quantization of the default lost 0.9 mAP50 points on TXL-PBC val that way, spread over
the whole network. Fine-tuning with that rounding in the forward pass (straight-through gradients)
is the usual remedy; a 12-minute CPU trial did not help (FP32 fell, the gap stayed; see
``benchmarks/results/int8_tensorrt_target_trials.md``), the default's full recipe on a GPU is untried.

Only the forward pass changes: each convolution's ``forward`` is replaced on the instance, so the
state dict, the checkpoint and the ONNX export are those of the plain model; its weights are then
quantized for real by ``bcedge quantize``. The heads' last convolutions stay in float, as
``quantize`` keeps them by default. Activation scales follow a moving average of each input's
largest magnitude, as a calibration would set them.
"""
from __future__ import annotations

import types

import torch
from torch import nn

FINAL_CONVS = ("cls_logits", "bbox_reg", "bbox_ctrness")   # torchvision heads' output layers: kept in float
LEVELS = 127                                               # symmetric INT8: -128..127, zero point 0
MOMENTUM = 0.01


class _InputScale:
    """A running per-tensor scale of one convolution's input (not in the state dict)."""

    def __init__(self) -> None:
        self.amax: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        current = x.detach().abs().amax()
        if self.amax is None:
            self.amax = current
        elif training:
            self.amax = (1 - MOMENTUM) * self.amax + MOMENTUM * current
        return torch.clamp(self.amax / LEVELS, min=1e-8).reshape(1).float()


def _fake_quantized_forward(conv: nn.Conv2d, scale: _InputScale):
    def forward(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        step = scale(x, self.training)
        zero = torch.zeros(1, dtype=torch.int32, device=x.device)
        x = torch.fake_quantize_per_tensor_affine(x, step, zero, -LEVELS - 1, LEVELS)
        w = self.weight
        w_step = torch.clamp(w.detach().abs().amax(dim=(1, 2, 3)) / LEVELS, min=1e-8).float()
        w_zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
        w = torch.fake_quantize_per_channel_affine(w, w_step, w_zero, 0, -LEVELS - 1, LEVELS)
        return self._conv_forward(x, w, self.bias)

    return types.MethodType(forward, conv)


def fake_quantize_convs(model: nn.Module) -> int:
    """Make every convolution of ``model`` but the heads' last ones see INT8-rounded inputs and weights,
    as the TensorRT target runs them; returns how many. ``remove_fake_quantization`` undoes it."""
    count = 0
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and not name.endswith(FINAL_CONVS):
            module.forward = _fake_quantized_forward(module, _InputScale())
            count += 1
    return count


def remove_fake_quantization(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and "forward" in module.__dict__:
            del module.forward
