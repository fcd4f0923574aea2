"""A detector = torchvision detection model + its ``ModelMeta``; built from names, saved as one checkpoint."""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock

from bcedge.artifact import ArtifactError, ModelMeta
from bcedge.detections import Detections


class FixedSizeTransform(GeneralizedRCNNTransform):
    """torchvision's transform without its hidden resize: the model sees exactly ``input_size``.

    The default transform rescales every input to 800 px, which would silently undo tiling. Here an
    input of another size is an error; the caller tiles, pads or letterboxes first.
    """

    def __init__(self, input_size: tuple[int, int], mean, std) -> None:
        width, height = input_size
        super().__init__(min(width, height), max(width, height), list(mean), list(std), size_divisible=32)
        self.input_size = (width, height)

    def resize(self, image: torch.Tensor, target=None):
        height, width = image.shape[-2:]
        if (width, height) != self.input_size:
            raise ValueError(
                f"model input is {self.input_size[0]}x{self.input_size[1]} but got {width}x{height}; tile or pad first"
            )
        return image, target


class StrideTransform(GeneralizedRCNNTransform):
    """For fully convolutional heads with a dynamic deploy graph: any input whose sides are multiples
    of ``stride`` goes through unresized (others are an error, as with ``FixedSizeTransform``)."""

    def __init__(self, stride: int, mean, std) -> None:
        super().__init__(32, 4096, list(mean), list(std), size_divisible=stride)
        self.stride = stride

    def resize(self, image: torch.Tensor, target=None):
        height, width = image.shape[-2:]
        if width % self.stride or height % self.stride:
            raise ValueError(f"model input sides must be multiples of {self.stride}, got {width}x{height}; pad first")
        return image, target


class WithFPN(nn.Module):
    """Backbone body + feature pyramid over the chosen C-levels (and optional extra levels)."""

    def __init__(self, body: nn.Module, channels: list[int], use: list[str], out_channels: int = 128,
                 extra: ExtraFPNBlock | None = None) -> None:
        super().__init__()
        self.body, self.use = body, use
        self.fpn = FeaturePyramidNetwork([channels[int(k)] for k in use], out_channels, extra_blocks=extra)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        features = self.body(x)
        return self.fpn(OrderedDict((k, features[k]) for k in self.use))


def freeze_batchnorm(module: nn.Module) -> None:
    """Keep BatchNorm statistics fixed (pretrained backbones trained with batches of 2-4 images)."""
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.eval()
            layer.track_running_stats = True
            layer.momentum = 0.0


class Detector(nn.Module):
    """The trainable model plus everything needed to run or export it.

    ``forward`` is torchvision's (lists of 0..1 tensors, targets with labels 1..C). ``deploy`` is the
    export graph: a batch (B, 3, H, W) of RGB in 0..1 -> boxes (B, A, 4) xyxy px and scores (B, A, C),
    before score filtering and NMS, which the runtime does.
    """

    def __init__(self, model: nn.Module, meta: ModelMeta, deploy_fn: Callable, frozen_bn: bool = False) -> None:
        super().__init__()
        self.model, self.meta, self._deploy_fn, self.frozen_bn = model, meta, deploy_fn, frozen_bn

    def train(self, mode: bool = True) -> "Detector":
        super().train(mode)
        if mode and self.frozen_bn:
            freeze_batchnorm(self.model.backbone)
        return self

    def forward(self, images, targets=None):
        return self.model(images, targets)

    def deploy(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.tensor(self.meta.mean, dtype=batch.dtype, device=batch.device).view(1, 3, 1, 1)
        std = torch.tensor(self.meta.std, dtype=batch.dtype, device=batch.device).view(1, 3, 1, 1)
        return self._deploy_fn(self.model, (batch - mean) / std)

    @torch.no_grad()
    def predict(self, images: list[np.ndarray]) -> list[Detections]:
        """RGB uint8 images of exactly ``input_size`` -> detections after the model's own NMS."""
        self.eval()
        device = next(self.parameters()).device
        tensors = [torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float().div(255).to(device) for im in images]
        results = []
        for out in self.model(tensors):
            labels = out["labels"].cpu().numpy() - 1
            results.append(Detections(out["boxes"].cpu().numpy(), out["scores"].cpu().numpy(), labels))
        return results

    def save(self, path: str | Path, **state) -> None:
        """One file: metadata JSON, weights, and any training state (optimizer, epoch) for resuming."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save({"bcedge_meta": self.meta.to_json(), "model": self.model.state_dict(), **state}, tmp)
        tmp.replace(path)


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ArtifactError(f"{path}: not a readable bcedge checkpoint ({exc})") from exc
    if not isinstance(state, dict) or "bcedge_meta" not in state:
        raise ArtifactError(f"{path}: not a bcedge checkpoint (no bcedge metadata)")
    return state
