"""Profiles, cells and their statuses: what runs where, and why not."""
from __future__ import annotations

import pytest

from bcedge.bench import matrix
from bcedge.bench.matrix import Cell, get_profile, precheck, status_kind
from bcedge.bench.runner import with_overrides


def test_cpu_profile_covers_both_stages_backends_precisions_and_batches():
    profile = get_profile("cpu")
    cells = profile.cells()
    assert len(cells) == len(profile.archs) * len(profile.runners) * 3 * 2
    assert {c.arch for c in cells} >= {"faster_rcnn_efficientnet_lite0", "fcos_efficientnet_lite0", "fcos_resnet50"}
    assert {c.runner for c in cells} == {"torch:cpu", "onnxruntime:cpu"}
    assert {c.precision for c in cells} == {"fp32", "fp16", "int8"} and {c.batch for c in cells} == {1, 4}
    assert cells[0].key == "fcos_efficientnet_lite0/torch:cpu/fp32/b1/640x480"


def test_the_light_head_is_in_the_cpu_and_gpu_matrices_beside_the_others():
    for name in ("cpu", "gpu"):
        archs = get_profile(name).archs
        assert "fcos_lite_efficientnet_lite0" in archs and {"fcos_efficientnet_lite0", "ssdlite_efficientnet_lite0",
                                                             "faster_rcnn_efficientnet_lite0"} <= set(archs)


def test_torch_runs_fp32_only_and_says_so():
    cell = Cell("fcos_efficientnet_lite0", "torch", "cpu", "fp16", 1, (640, 480))
    status = precheck(cell, reasons={"torch:cpu": None})
    assert status_kind(status) == "unsupported here" and "FP32 checkpoints only" in status
    assert precheck(Cell("fcos_efficientnet_lite0", "torch", "cpu", "fp32", 1, (640, 480)), {"torch:cpu": None}) is None


def test_missing_runtime_gives_unsupported_here_with_its_reason(monkeypatch):
    from bcedge.backends import backend_class

    monkeypatch.setattr(backend_class("tensorrt"), "unavailable_reason", classmethod(lambda cls, d: "TensorRT is not installed"))
    cell = Cell("fcos_efficientnet_lite0", "tensorrt", "cuda", "int8", 4, (640, 480))
    assert precheck(cell) == "unsupported here: TensorRT is not installed"
    assert matrix.artifact_kind(cell) == "engine:int8"


def test_onnxruntime_cpu_int8_uses_the_cpu_quantization_target():
    cpu = Cell("fcos_efficientnet_lite0", "onnxruntime", "cpu", "int8", 1, (640, 480))
    gpu = Cell("fcos_efficientnet_lite0", "onnxruntime", "cuda", "int8", 1, (640, 480))
    assert matrix.artifact_kind(cpu) == "onnx:int8-cpu" and matrix.artifact_kind(gpu) == "onnx:int8"


def test_onnxruntime_without_the_provider_is_unsupported_here():
    reason = matrix.runner_reason("onnxruntime", "tensorrt")
    import onnxruntime

    if "TensorrtExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has the TensorRT execution provider")
    assert "TensorrtExecutionProvider" in reason
    assert matrix.runner_reason("onnxruntime", "cpu") is None
    assert matrix.runner_reason("nonsense", "cpu") == "unknown backend 'nonsense'"
    assert precheck(Cell("a", "nonsense", "cpu", "fp32", 1, (64, 64))) == "unsupported here: unknown backend 'nonsense'"


def test_reasons_come_from_the_backend_classes(monkeypatch):
    """The matrix keeps no table of its own: a backend's spec answers for it."""
    from bcedge.backends import backend_class

    ort = backend_class("onnxruntime")
    monkeypatch.setattr(ort, "unavailable_reason", classmethod(lambda cls, d: f"no {d} here (from the class)"))
    assert matrix.runner_reason("onnxruntime", "cuda") == "no cuda here (from the class)"
    monkeypatch.setattr(ort, "precisions", ("fp32",))
    cell = Cell("fcos_efficientnet_lite0", "onnxruntime", "cuda", "fp16", 1, (640, 480))
    assert precheck(cell, {"onnxruntime:cuda": None}) == "unsupported here: the onnxruntime backend runs fp32 only, not fp16"


def test_overrides_replace_fields_and_timing():
    profile = with_overrides(get_profile("cpu"), archs=["fcos_efficientnet_lite0"], batches=[2], tiles=[(320, 256)],
                             min_time_s=0.5, min_iterations=500, runners=None)
    assert profile.archs == ("fcos_efficientnet_lite0",) and profile.batches == (2,) and profile.tiles == ((320, 256),)
    assert profile.runners == get_profile("cpu").runners
    assert profile.timing.min_time_s == 0.5 and profile.timing.max_iterations >= 500
    with pytest.raises(ValueError, match="unknown benchmark profile"):
        get_profile("nope")


def test_two_stage_is_known_without_and_with_the_zoo():
    assert matrix.is_two_stage("faster_rcnn_efficientnet_lite0") is True
    assert matrix.is_two_stage("ssdlite_efficientnet_lite0") is False
