"""Shared fixtures for the export-road tests: tiny models exported once per session, a tiny VOC dataset."""
from __future__ import annotations

from pathlib import Path

import pytest

from convert_helpers import CLASSES, SIZE, write_tiny_voc


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """exported(arch, pretrained=False) -> (checkpoint path, onnx path), cached for the session."""
    torch = pytest.importorskip("torch")
    from bcedge.convert.torch2onnx import torch2onnx
    from bcedge.models import build_detector

    cache: dict = {}
    root = tmp_path_factory.mktemp("exported")

    def get(arch: str, pretrained: bool = False) -> tuple[Path, Path]:
        key = (arch, pretrained)
        if key not in cache:
            torch.manual_seed(0)
            detector = build_detector(arch, CLASSES, SIZE, pretrained=pretrained)
            if arch.startswith("faster_rcnn"):
                # spread the RPN's objectness as training does: an untrained RPN scores every anchor
                # alike, and the proposal order then hangs on rounding differences between runtimes
                torch.nn.init.normal_(detector.model.rpn.head.cls_logits.weight, std=0.5)
            if arch.startswith("fcos_lite"):
                # the same for the light head: its near-zero initial logits give all locations one score
                head = detector.model.head
                torch.nn.init.normal_(head.classification_head.cls_logits.weight, std=0.5)
                torch.nn.init.constant_(head.regression_head.bbox_reg.bias, 1.0)  # boxes of some size, not zero
            stem = root / f"{arch}{'_pre' if pretrained else ''}"
            detector.save(stem.with_suffix(".pt"))
            cache[key] = (stem.with_suffix(".pt"), torch2onnx(detector, stem.with_suffix(".onnx")))
        return cache[key]

    return get


@pytest.fixture(scope="session")
def tiny_voc(tmp_path_factory) -> Path:
    return write_tiny_voc(tmp_path_factory.mktemp("voc"))


@pytest.fixture(scope="session")
def calib_dir(tiny_voc, tmp_path_factory) -> Path:
    """A calibration set of 64x64 tiles from the tiny dataset."""
    from bcedge.convert.calibration import TileSpec, build_calibration_set
    from bcedge.data import load_dataset

    out = tmp_path_factory.mktemp("calib")
    build_calibration_set(load_dataset(tiny_voc), out, TileSpec(SIZE, overlap=8), count=16)
    return out
