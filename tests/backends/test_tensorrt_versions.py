"""Engines built through ``onnx2engine`` against a double of each TensorRT version's API (8.5, 10.3, 10.13, 11.1).

The double (``fake_tensorrt``) enforces how TensorRT must be called per version, so CI without TensorRT
catches what broke builds before: ``flags=0`` on TensorRT 8 (implicit batch), INT32 dequantized biases,
flags a version lacks, engines from another version. Nothing here measures or fakes a TensorRT result.
"""
from __future__ import annotations

import json
import types
from dataclasses import asdict

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import fake_tensorrt  # noqa: E402
from bcedge.artifact import ArtifactError, ModelMeta, read_engine_header, write_onnx_meta  # noqa: E402
from bcedge.backends import load_backend  # noqa: E402
from bcedge.convert import onnx2engine as builder  # noqa: E402
from bcedge.convert import trt_rules  # noqa: E402
from bcedge.convert.onnx2engine import EngineOptions, onnx2engine  # noqa: E402

VERSIONS = list(fake_tensorrt.VERSIONS)
GPU = {"name": "Fake Orin", "compute_capability": "8.7"}


class FakeCuda:
    """Stands in for cuda-python: the device's name and compute capability, no memory, no kernels."""

    def __init__(self):
        self.rt = types.SimpleNamespace(cudaSetDevice=lambda index: 0, cudaStreamDestroy=lambda stream: 0)

    def call(self, result):
        return result

    def device(self, index: int = 0) -> dict:
        return dict(GPU)

    def stream(self):
        return 1

    def malloc(self, nbytes):
        return 0

    def free(self, pointer):
        pass


@pytest.fixture(autouse=True)
def fake_cuda(monkeypatch):
    import bcedge.backends.tensorrt as runner

    monkeypatch.setattr(builder, "Cuda", FakeCuda)
    monkeypatch.setattr(runner, "Cuda", FakeCuda)


def _model(path, precision="fp32", bias="float", dynamic=False):
    """A tiny bcedge deploy graph: images -> Conv -> boxes / scores, optionally Q/DQ (TensorRT target)."""
    inits = [numpy_helper.from_array(np.full((4, 3, 1, 1), 0.1, np.float32), "w_box"),
             numpy_helper.from_array(np.full((3, 3, 1, 1), 0.1, np.float32), "w_cls"),
             numpy_helper.from_array(np.zeros((3,), np.float32), "b_cls"),
             numpy_helper.from_array(np.array([0, -1, 4], np.int64), "to_boxes"),
             numpy_helper.from_array(np.array([0, -1, 3], np.int64), "to_scores")]
    nodes, conv_in, w_box, b_box = [], "images", "w_box", "b_box"
    inits.append(numpy_helper.from_array(np.zeros((4,), np.float32), "b_box"))
    if precision == "int8":
        inits += [numpy_helper.from_array(np.array(0.02, np.float32), "a_scale"),
                  numpy_helper.from_array(np.array(0, np.int8), "a_zero"),
                  numpy_helper.from_array(np.ones((4, 3, 1, 1), np.int8), "w_q"),
                  numpy_helper.from_array(np.full((4,), 0.01, np.float32), "w_scale"),
                  numpy_helper.from_array(np.zeros((4,), np.int8), "w_zero")]
        nodes += [helper.make_node("QuantizeLinear", ["images", "a_scale", "a_zero"], ["x_q"], name="x_Q"),
                  helper.make_node("DequantizeLinear", ["x_q", "a_scale", "a_zero"], ["x_dq"], name="x_DQ"),
                  helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w_dq"], name="w_DQ", axis=0)]
        conv_in, w_box = "x_dq", "w_dq"
        if bias == "int32":
            inits += [numpy_helper.from_array(np.arange(4, dtype=np.int32), "b_q"),
                      numpy_helper.from_array(np.full((4,), 2e-4, np.float32), "b_scale")]
            nodes.append(helper.make_node("DequantizeLinear", ["b_q", "b_scale"], ["b_dq"], name="box.bias_DequantizeLinear"))
            b_box = "b_dq"
    nodes += [helper.make_node("Conv", [conv_in, w_box, b_box], ["f_box"], name="box"),
              helper.make_node("Reshape", ["f_box", "to_boxes"], ["boxes"], name="box_reshape"),
              helper.make_node("Conv", ["images", "w_cls", "b_cls"], ["f_cls"], name="cls"),
              helper.make_node("Sigmoid", ["f_cls"], ["p_cls"], name="cls_sigmoid"),
              helper.make_node("Reshape", ["p_cls", "to_scores"], ["scores"], name="cls_reshape")]
    hw = ["h", "w"] if dynamic else [64, 64]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, *hw])],
                              [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["batch", "anchors", 4]),
                               helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", "anchors", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    meta = ModelMeta(arch="fcos_efficientnet_lite0", head="fcos", backbone="efficientnet_lite0",
                     class_names=["RBC", "WBC", "Platelets"], input_size=(64, 64), precision=precision, stride=32,
                     dynamic_input=dynamic)
    if precision == "int8":
        meta.recipe = {"convert": [{"step": "quantize", "target": "tensorrt"}]}
    write_onnx_meta(model, meta)
    onnx.save(model, str(path))
    return path


def _calls(trt, name):
    return [details for call, details in trt.calls if call == name]


@pytest.mark.parametrize("version", VERSIONS)
def test_fp16_engine_builds_on_each_version(version, tmp_path, monkeypatch):
    trt = fake_tensorrt.install(monkeypatch, version)
    engine = onnx2engine(_model(tmp_path / "m.onnx"), tmp_path / "m.engine", EngineOptions(precision="fp16"))
    flags = _calls(trt, "create_network")[0]["flags"]
    build = _calls(trt, "build")[0]
    header = read_engine_header(engine)
    assert header["tensorrt"] == version and header["device"] == GPU and header["precision"] == "fp16"
    assert build["shapes"]["images"] == [[1, 3, 64, 64], [4, 3, 64, 64], [8, 3, 64, 64]]
    if version.startswith("8."):     # explicit batch must be asked for, and FP16 is a builder flag
        assert flags == 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) and build["flags"] == ["FP16"]
    elif version.startswith("10."):  # explicit batch is implied; the deprecated flag is not passed
        assert flags == 0 and build["flags"] == ["FP16"] and not build["strongly_typed"]
        assert not any("EXPLICIT_BATCH" in w for w in trt.warnings)
    else:                            # 11: strongly typed, the ONNX itself is converted to FP16, no precision flags
        assert flags == 0 and build["strongly_typed"] and build["flags"] == []
        assert header["strongly_typed"] and "onnx2fp16" in " ".join(header["notes"])


def test_the_old_flags_zero_fails_on_tensorrt_8_only(tmp_path, monkeypatch):
    """The regression this double exists for: create_network(0) is implicit batch on TensorRT 8."""
    monkeypatch.setattr(trt_rules, "network_flags", lambda trt, strongly_typed: 0)
    fake_tensorrt.install(monkeypatch, "8.5.2")
    with pytest.raises(RuntimeError, match="requires an explicit batch network"):
        onnx2engine(_model(tmp_path / "m.onnx"), tmp_path / "m.engine", EngineOptions(precision="fp16"))
    fake_tensorrt.install(monkeypatch, "10.3.0")
    assert onnx2engine(_model(tmp_path / "m.onnx"), tmp_path / "m.engine", EngineOptions(precision="fp16")).is_file()


@pytest.mark.parametrize("version", VERSIONS)
def test_qdq_int8_builds_with_fp32_biases_and_int32_biases_are_refused(version, tmp_path, monkeypatch):
    trt = fake_tensorrt.install(monkeypatch, version)
    onnx2engine(_model(tmp_path / "q.onnx", "int8"), tmp_path / "q.engine", EngineOptions(precision="int8"))
    build = _calls(trt, "build")[0]
    assert build["flags"] == ([] if version.startswith("11.") else ["FP16", "INT8"])
    with pytest.raises(ValueError, match=r"bad.onnx: the Q/DQ graph is not one TensorRT parses: box.bias_DequantizeLinear"):
        onnx2engine(_model(tmp_path / "bad.onnx", "int8", bias="int32"), tmp_path / "bad.engine", EngineOptions(precision="int8"))
    assert len(_calls(trt, "parse")) == 1                       # refused before TensorRT was asked
    # and the double's parser refuses it as TensorRT's does, should a file get past the check
    network = trt.Builder(None).create_network(trt_rules.network_flags(trt, False))
    parser = trt.OnnxParser(network, None)
    assert not parser.parse_from_file(tmp_path / "bad.onnx")
    assert parser.get_error(0) == "box.bias_DequantizeLinear: only activation types allowed as input to this layer."


@pytest.mark.parametrize("version", VERSIONS)
def test_implicit_int8_calibration_exists_up_to_10_only(version, tmp_path, monkeypatch):
    trt = fake_tensorrt.install(monkeypatch, version)
    cache = tmp_path / "m.calib"
    cache.write_bytes(b"TRT-calibration-cache")
    options = EngineOptions(precision="int8", calib_cache=cache)
    if version.startswith("11."):
        assert not hasattr(trt, "IInt8EntropyCalibrator2")
        with pytest.raises(ValueError, match="quantize first"):
            onnx2engine(_model(tmp_path / "m.onnx"), tmp_path / "m.engine", options)
        return
    onnx2engine(_model(tmp_path / "m.onnx"), tmp_path / "m.engine", options)
    assert _calls(trt, "build")[0]["calibrator"] == "Calibrator"     # bcedge's subclass of IInt8EntropyCalibrator2


@pytest.mark.parametrize("version", VERSIONS)
def test_version_compatible_engines(version, tmp_path, monkeypatch):
    trt = fake_tensorrt.install(monkeypatch, version)
    options = EngineOptions(precision="int8", version_compatible=True)
    if version == "8.5.2":
        with pytest.raises(ValueError, match="came in 8.6"):
            onnx2engine(_model(tmp_path / "q.onnx", "int8"), tmp_path / "q.engine", options)
        assert not hasattr(trt.BuilderFlag, "VERSION_COMPATIBLE")
        return
    engine = onnx2engine(_model(tmp_path / "q.onnx", "int8"), tmp_path / "q.engine", options)
    assert "VERSION_COMPATIBLE" in _calls(trt, "build")[0]["flags"] and read_engine_header(engine)["version_compatible"]


def test_engines_from_another_version_say_rebuild_unless_version_compatible(tmp_path, monkeypatch):
    fake_tensorrt.install(monkeypatch, "10.3.0")
    plain = onnx2engine(_model(tmp_path / "q.onnx", "int8"), tmp_path / "plain.engine", EngineOptions(precision="int8"))
    compatible = onnx2engine(tmp_path / "q.onnx", tmp_path / "vc.engine", EngineOptions(precision="int8", version_compatible=True))
    assert load_backend(plain).describe() == "tensorrt on cuda:0 (int8)"          # same version: runs
    for later in ("10.13.3", "11.1.0"):
        trt = fake_tensorrt.install(monkeypatch, later)
        with pytest.raises(ArtifactError, match=rf"plain.engine: built with TensorRT 10.3.0, this machine has TensorRT {later}; rebuild"):
            load_backend(plain)
        runner = load_backend(compatible)                                           # the lean runtime inside runs it
        assert runner.warnings == [f"{compatible}: built version-compatible with TensorRT 10.3.0, running on {later}"]
        assert _calls(trt, "deserialize") == [{"built": "10.3.0", "dla_core": -1}]
    fake_tensorrt.install(monkeypatch, "8.5.2")
    with pytest.raises(ArtifactError, match="built version-compatible with TensorRT 10.3.0, which TensorRT 8.5.2 cannot run"):
        load_backend(compatible)


def test_dla_with_gpu_fallback_on_jetpack_6(tmp_path, monkeypatch):
    trt = fake_tensorrt.install(monkeypatch, "10.3.0")
    engine = onnx2engine(_model(tmp_path / "m.onnx"), tmp_path / "m.engine", EngineOptions(precision="fp16", dla_core=1))
    build = _calls(trt, "build")[0]
    assert build["dla_core"] == 1 and "GPU_FALLBACK" in build["flags"]
    assert build["shapes"]["images"] == [[4, 3, 64, 64]] * 3                        # DLA: fixed shapes (batch = OPT)
    header = read_engine_header(engine)
    assert header["dla_core"] == 1 and header["gpu_fallback"] and header["batch"] == [4, 4, 4]
    runner = load_backend(engine)
    assert runner.describe() == "tensorrt on cuda:0, DLA core 1 with GPU fallback (fp16)"
    assert _calls(trt, "deserialize")[-1]["dla_core"] == 1
    with pytest.raises(ValueError, match="--dla 2: this device has 2 DLA core"):
        onnx2engine(tmp_path / "m.onnx", tmp_path / "x.engine", EngineOptions(precision="fp16", dla_core=2))
    with pytest.raises(ValueError, match="DLA runs FP16 and INT8 layers only"):
        onnx2engine(tmp_path / "m.onnx", tmp_path / "x.engine", EngineOptions(precision="fp32", dla_core=0))
    fake_tensorrt.install(monkeypatch, "10.3.0", dla_cores=1)                     # an Orin NX: one core
    with pytest.raises(ArtifactError, match="built for DLA core 1, this device has 1 DLA core"):
        load_backend(engine)


@pytest.mark.parametrize("version", ["10.13.3", "11.1.0"])
def test_dla_is_refused_where_the_release_has_none(version, tmp_path, monkeypatch):
    fake_tensorrt.install(monkeypatch, version)
    with pytest.raises(ValueError, match=f"TensorRT {version} does not support DLA"):
        onnx2engine(_model(tmp_path / "m.onnx"), tmp_path / "m.engine", EngineOptions(precision="fp16", dla_core=0))


def test_dynamic_input_gets_a_size_profile(tmp_path, monkeypatch):
    trt = fake_tensorrt.install(monkeypatch, "10.3.0")
    engine = onnx2engine(_model(tmp_path / "d.onnx", dynamic=True), tmp_path / "d.engine", EngineOptions(precision="fp16"))
    assert _calls(trt, "build")[0]["shapes"]["images"] == [[1, 3, 32, 32], [4, 3, 64, 64], [8, 3, 128, 128]]
    assert read_engine_header(engine)["input_sizes"] == [[32, 32], [64, 64], [128, 128]]
    runner = load_backend(engine)
    assert runner.size_range == ((32, 32), (128, 128))
    with pytest.raises(ValueError, match="the engine takes 32x32 to 128x128 inputs, got 256x64"):
        runner.check_batch(np.zeros((1, 3, 64, 256), np.float32))
    with pytest.raises(ValueError, match="fixed input size"):
        onnx2engine(_model(tmp_path / "s.onnx"), tmp_path / "s.engine",
                    EngineOptions(precision="fp16", input_sizes=((32, 32), (64, 64), (128, 128))))


def test_each_version_has_the_members_its_bindings_list():
    """The double's tables, checked against facts read from each release's pyCore.cpp."""
    members = {v: fake_tensorrt.make(v) for v in VERSIONS}
    assert hasattr(members["8.5.2"].NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    assert not hasattr(members["8.5.2"].NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    assert int(members["10.3.0"].NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 1
    assert int(members["11.1.0"].NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 0
    assert not hasattr(members["11.1.0"].NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    assert not hasattr(members["11.1.0"].BuilderFlag, "FP16") and not hasattr(members["11.1.0"].BuilderFlag, "INT8")
    assert int(members["10.3.0"].BuilderFlag.VERSION_COMPATIBLE) == 13 and int(members["11.1.0"].BuilderFlag.VERSION_COMPATIBLE) == 12
    with pytest.raises(RuntimeError, match="TensorRT 11.1.0 has no BuilderFlag.FP16"):
        trt_rules.builder_flag(members["11.1.0"], "FP16")
    with pytest.raises(ValueError, match="no strongly typed networks"):
        trt_rules.network_flags(members["8.5.2"], strongly_typed=True)
    assert json.loads(json.dumps(asdict(fake_tensorrt.VERSIONS["8.5.2"])))["host_code_switch"] is False


def test_no_usable_gpu_is_a_clear_error(tmp_path, monkeypatch):
    from bcedge.backends import BackendUnavailable

    fake_tensorrt.install(monkeypatch, "10.3.0")
    engine = onnx2engine(_model(tmp_path / "m.onnx"), tmp_path / "m.engine", EngineOptions(precision="fp16"))

    def no_device(self, index=0):
        raise RuntimeError("CUDA error cudaErrorNoDevice")

    monkeypatch.setattr(FakeCuda, "device", no_device)
    with pytest.raises(BackendUnavailable, match=r"m.engine on --device cuda:1: no usable CUDA device 1 \(CUDA error "
                                                 r"cudaErrorNoDevice\); check the NVIDIA driver"):
        load_backend(engine, device="cuda:1")
