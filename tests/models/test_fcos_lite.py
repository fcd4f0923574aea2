"""FCOS-Lite, the light cell head: its compute budget, its point grid, and its level sizes."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from bcedge.models import build_detector  # noqa: E402
from bcedge.models.heads.common import image_list  # noqa: E402
from bcedge.models.heads.fcos_lite import points  # noqa: E402

CLASSES = ["RBC", "WBC", "Platelets"]


def gflops(detector, width: int, height: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        detector.deploy(torch.rand(1, 3, height, width))
    return counter.get_total_flops() / 1e9


def test_a_bccd_frame_costs_under_5_gflops_even_unscaled():
    light = build_detector("fcos_lite_efficientnet_lite0", CLASSES, (640, 480), pretrained=False).eval()
    reference = build_detector("fcos_efficientnet_lite0", CLASSES, (640, 480), pretrained=False).eval()
    at_model_scale = gflops(light, 352, 288)     # a 640x480 BCCD frame resampled to 56 px red cells
    assert at_model_scale < 2.0
    assert gflops(light, 640, 480) < 5.0
    assert gflops(reference, 640, 480) > 10 * at_model_scale


def test_the_deploy_grid_matches_torchvisions_anchor_points_at_any_size():
    detector = build_detector("fcos_lite_efficientnet_lite0", CLASSES, (640, 480), pretrained=False).eval()
    for height, width in [(96, 160), (288, 352)]:
        batch = torch.rand(1, 3, height, width)
        features = list(detector.model.backbone(batch).values())
        expected = detector.model.anchor_generator(image_list(batch), features)[0]
        assert torch.equal(points(features), expected)
        assert [f.shape[-1] for f in features] == [width // 8, width // 16, width // 32]


def test_the_head_has_no_groupnorm_and_batchnorm_folds():
    detector = build_detector("fcos_lite_efficientnet_lite0", CLASSES, (640, 480), pretrained=False)
    kinds = {type(m).__name__ for m in detector.model.head.modules()} | {type(m).__name__ for m in detector.model.backbone.modules()}
    assert "GroupNorm" not in kinds and "BatchNorm2d" in kinds
    assert detector.meta.dynamic_input and detector.meta.stride == 32
