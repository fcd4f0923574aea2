"""TensorRT engine files: header format and load-time checks everywhere; real engines only where TensorRT is.

The tests that need TensorRT and a GPU skip cleanly without them; nothing here fakes a TensorRT result.
"""
from __future__ import annotations

import importlib.util
from dataclasses import asdict

import numpy as np
import pytest

from bcedge.artifact import ArtifactError, ModelMeta
from bcedge.backends import BackendUnavailable, load_backend
from bcedge.artifact import read_engine_header, write_engine
from bcedge.backends.tensorrt import check_header, device_index, split_batches

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
META = ModelMeta(arch="fcos_efficientnet_lite0", head="fcos", backbone="efficientnet_lite0",
                 class_names=["RBC", "WBC", "Platelets"], input_size=(640, 480), precision="fp16")
HEADER = {"meta": asdict(META), "tensorrt": "10.3.0", "precision": "fp16", "batch": [1, 4, 8],
          "device": {"name": "Orin", "compute_capability": "8.7"}}


def test_header_checked_against_this_machine():
    here = {"name": "Orin", "compute_capability": "8.7"}
    assert check_header(HEADER, "m.engine", "10.3.0", here) == []
    with pytest.raises(ArtifactError, match="built with TensorRT 10.3.0, this machine has TensorRT 8.6.2"):
        check_header(HEADER, "m.engine", "8.6.2", here)
    with pytest.raises(ArtifactError, match=r"compute capability 8.7.*compute capability 9.0.*rebuild"):
        check_header(HEADER, "m.engine", "10.3.0", {"name": "H100", "compute_capability": "9.0"})
    warnings = check_header(HEADER, "m.engine", "10.3.0", {"name": "Orin NX", "compute_capability": "8.7"})
    assert len(warnings) == 1 and "Orin NX" in warnings[0]


def test_device_names():
    assert device_index("auto") == device_index("cuda") == 0 and device_index("cuda:1") == 1
    with pytest.raises(ValueError, match="CUDA device"):
        device_index("cpu")


def test_batches_split_to_the_profile():
    assert split_batches(10, 1, 4) == [(0, 4, 4), (4, 8, 4), (8, 10, 2)]
    assert split_batches(3, 2, 8) == [(0, 3, 3)]
    assert split_batches(1, 2, 8) == [(0, 1, 2)]   # below MIN: padded, the extra rows dropped after
    assert split_batches(0, 1, 8) == []


@pytest.mark.skipif(HAS_TRT, reason="checks the message shown when TensorRT is missing")
def test_missing_tensorrt_is_a_clear_error(tmp_path):
    path = write_engine(tmp_path / "m.engine", HEADER, b"x")
    with pytest.raises(BackendUnavailable, match="TensorRT is not installed"):
        load_backend(path)


@pytest.mark.tensorrt
@pytest.mark.gpu
@pytest.mark.skipif(not HAS_TRT, reason="needs the tensorrt package and a CUDA GPU")
def test_engine_matches_onnxruntime(tmp_path):
    """Build FP32 and FP16 engines of a tiny export and compare them with ONNX Runtime (GPU machines only)."""
    pytest.importorskip("torch")
    from bcedge.convert.onnx2engine import EngineOptions, onnx2engine
    from bcedge.convert.torch2onnx import torch2onnx
    from bcedge.models import build_detector
    from bcedge.parity import compare, random_batches

    try:
        from bcedge.backends.tensorrt import Cuda

        Cuda().device(0)
    except Exception as exc:  # no driver or no GPU
        pytest.skip(f"no usable CUDA device: {exc}")
    detector = build_detector("fcos_efficientnet_lite0", ["RBC", "WBC", "Platelets"], (128, 96), pretrained=True)
    onnx_path = torch2onnx(detector, tmp_path / "m.onnx")
    runners = {"onnxruntime": load_backend(onnx_path, device="cpu")}
    for precision in ("fp32", "fp16"):
        engine = onnx2engine(onnx_path, tmp_path / f"m.{precision}.engine", EngineOptions(precision=precision, batch=(1, 2, 4)))
        assert read_engine_header(engine)["precision"] == precision
        runners[precision] = load_backend(engine)
    batches = random_batches(runners["onnxruntime"].meta, images=5, batch_size=5)  # 5 > MAX 4: split in two
    floor = float(np.quantile(runners["onnxruntime"].infer(batches[0])[1], 0.995))
    report = compare(runners, batches, score_floor=floor)
    assert report.ok, report.format()
