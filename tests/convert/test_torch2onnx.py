"""Every zoo architecture exports to an ONNX deploy graph that ONNX Runtime runs like torch does.

Parity: boxes within 1e-3 relative (0.01 px floor) and scores within 1e-4 before NMS, the same
detections after it, at batch sizes other than the traced one (the batch dimension is dynamic).
The default run covers every head on EfficientNet-Lite0 plus one head on each other backbone family;
the whole zoo is behind ``-m slow``.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from bcedge.artifact import read_onnx_meta  # noqa: E402
from bcedge.backends import load_backend  # noqa: E402
from bcedge.models import zoo  # noqa: E402
from bcedge.parity import TOLERANCES, compare, random_batches  # noqa: E402

from convert_helpers import CLASSES, SIZE  # noqa: E402

DEFAULT = ["fcos_lite_efficientnet_lite0", "fcos_efficientnet_lite0", "retinanet_efficientnet_lite0", "ssdlite_efficientnet_lite0",
           "faster_rcnn_efficientnet_lite0", "fcos_mobilenet_v3_large", "ssdlite_resnet50"]
SLOW = [a for a in zoo() if a not in DEFAULT]


def _score_floor(runner, batches) -> float:
    """A floor that leaves a few dozen candidates in an untrained model (its scores are nearly flat)."""
    scores = runner.infer(batches[0])[1]
    return float(np.quantile(scores, 0.995))


def _check_parity(exported, arch):
    ckpt, path = exported(arch)
    torch_runner, ort_runner = load_backend(ckpt), load_backend(path)
    # batches of 1 and 3: the graph was traced with 2, so this exercises the dynamic batch dimension
    batches = [b for b in random_batches(torch_runner.meta, images=4, batch_size=3)]
    report = compare({"torch": torch_runner, "onnxruntime": ort_runner}, batches,
                     score_floor=_score_floor(torch_runner, batches))
    pair = report.pairs[0]
    assert report.ok, report.format()
    assert pair.tolerance == TOLERANCES["fp32"]
    assert [len(b) for b in batches] == [3, 1]
    assert pair.box_outside == 0 and pair.score_outside == 0 and pair.mismatched == 0
    assert pair.detections[0] > 0, "the comparison must see detections to mean anything"
    assert pair.box_max_rel < 1e-3


@pytest.mark.parametrize("arch", DEFAULT)
def test_export_matches_torch(exported, arch):
    _check_parity(exported, arch)


@pytest.mark.slow
@pytest.mark.parametrize("arch", SLOW)
def test_export_matches_torch_whole_zoo(exported, arch):
    _check_parity(exported, arch)


def test_graph_contract_and_metadata(exported):
    _, path = exported("fcos_efficientnet_lite0")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    (images,) = model.graph.input
    assert images.name == "images" and dims(images) == ["batch", 3, SIZE[1], SIZE[0]]
    outputs = {o.name: dims(o) for o in model.graph.output}
    anchors = outputs["boxes"][1]
    assert outputs == {"boxes": ["batch", anchors, 4], "scores": ["batch", anchors, len(CLASSES)]}
    # FCOS on 64x64: one point per location on P3..P7 (8x8 + 4x4 + 2x2 + 1x1 + 1x1)
    assert anchors == 64 + 16 + 4 + 1 + 1
    ops = {n.op_type for n in model.graph.node}
    assert "Range" not in ops  # the anchor grid folded into constants
    assert not ops & {"NonMaxSuppression", "If", "Loop"}
    meta = read_onnx_meta(path)
    assert meta.class_names == CLASSES and meta.input_size == SIZE and meta.precision == "fp32"
    assert {"torch", "onnx", "opset", "bcedge"} <= set(meta.versions)
    step = meta.recipe["convert"][-1]
    assert step["step"] == "torch2onnx" and step["anchors"] == anchors and step["simplifier"].startswith("onnx")


def test_export_does_not_change_the_detector(tmp_path):
    import torch

    from bcedge.convert.torch2onnx import torch2onnx
    from bcedge.models import build_detector

    detector = build_detector("ssdlite_efficientnet_lite0", CLASSES, SIZE, pretrained=False)
    detector.train()
    torch2onnx(detector, tmp_path / "m.onnx", simplify=False)
    assert detector.training, "export must restore the training mode it found"
    assert detector.meta.precision == "fp32" and "convert" not in detector.meta.recipe
    assert all(m.training for m in detector.model.modules())
    assert read_onnx_meta(tmp_path / "m.onnx").recipe["convert"][0]["simplifier"] == "not simplified"
    with torch.no_grad():
        detector.eval()
        boxes, _ = detector.deploy(torch.rand(1, 3, SIZE[1], SIZE[0]))
    assert boxes.shape[-1] == 4


def test_two_stage_graph_has_fixed_shapes_and_no_branches(exported):
    """What TensorRT's parser and a dynamic batch need: no If/Loop/NonZero/NMS, static sizes but the batch."""
    _, path = exported("faster_rcnn_efficientnet_lite0")
    model = onnx.load(str(path))
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"If", "Loop", "NonZero", "NonMaxSuppression", "Trilu", "OneHot"}
    assert {"RoiAlign", "TopK"} <= ops
    outputs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    # K proposals (post_nms_top_n, capped by what 64x64 offers) x 3 classes, one row per (proposal, class)
    rows = outputs["boxes"][1]
    assert rows % len(CLASSES) == 0 and outputs["scores"] == ["batch", rows, len(CLASSES)]
    import onnxruntime as ort

    batch = np.random.default_rng(0).random((2, 3, SIZE[1], SIZE[0]), dtype=np.float32)
    _, scores = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": batch})
    per_row = (scores > 0).sum(-1)
    assert per_row.max() == 1, "each row carries the score of one class only"


def test_fast_nms_keeps_what_no_higher_box_overlaps():
    import torch

    from bcedge.models.heads.faster_rcnn_deploy import fast_nms_keep

    boxes = torch.tensor([[[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 9]]], dtype=torch.float32)
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6]])
    assert fast_nms_keep(boxes, scores, 0.7).tolist() == [[1.0, 0.0, 1.0, 0.0]]
    assert fast_nms_keep(boxes, scores, 0.95).tolist() == [[1.0, 1.0, 1.0, 1.0]]


def test_dynamic_input_graph_runs_other_sizes_like_torch(exported):
    """FCOS-Lite's graph takes any multiple of 32: ONNX Runtime matches torch at sizes never traced."""
    import torch

    from bcedge.models import load_detector

    ckpt, path = exported("fcos_lite_efficientnet_lite0")
    meta = read_onnx_meta(path)
    assert meta.dynamic_input and meta.stride == 32
    model = onnx.load(str(path))
    (images,) = model.graph.input
    assert [d.dim_param or d.dim_value for d in images.type.tensor_type.shape.dim] == ["batch", 3, "height", "width"]
    detector, _ = load_detector(ckpt)
    detector.eval()
    runner = load_backend(path)
    for height, width in [(96, 160), (128, 64)]:
        batch = np.random.default_rng(height).random((2, 3, height, width), dtype=np.float32)
        boxes, scores = runner.infer(batch)
        with torch.no_grad():
            ref_boxes, ref_scores = detector.deploy(torch.from_numpy(batch))
        points = (height // 8) * (width // 8) + (height // 16) * (width // 16) + (height // 32) * (width // 32)
        assert boxes.shape == (2, points, 4) and scores.shape == (2, points, len(CLASSES))
        np.testing.assert_allclose(boxes, ref_boxes.numpy(), atol=1e-2)
        np.testing.assert_allclose(scores, ref_scores.numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="multiples of 32"):
        runner.infer(np.zeros((1, 3, 100, 64), np.float32))
