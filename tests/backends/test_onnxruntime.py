"""ONNX Runtime backend: a device asked for is never downgraded, auto says what it chose, TensorRT EP options."""
from __future__ import annotations

import pytest

from bcedge.artifact import ModelMeta, read_onnx_meta, write_onnx_meta
from bcedge.backends import BackendUnavailable, load_backend
from bcedge.backends import onnxruntime as ort_backend

ort = pytest.importorskip("onnxruntime")
META = ModelMeta(arch="a_b", head="a", backbone="b", class_names=["x"], input_size=(4, 4), precision="int8")


@pytest.fixture()
def tiny(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["boxes"])], "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 3, 4, 4])])
    model = helper.make_model(graph)
    write_onnx_meta(model, META)
    onnx.save(model, str(tmp_path / "m.onnx"))
    return tmp_path / "m.onnx"


def test_cuda_without_the_gpu_build_names_the_package(tiny, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(ort_backend, "installed_builds", lambda: ["onnxruntime"])
    with pytest.raises(BackendUnavailable, match=r"m.onnx on --device cuda: .*no CUDAExecutionProvider.*'bcedge\[gpu\]'"):
        load_backend(tiny, device="cuda")
    monkeypatch.setattr(ort_backend, "installed_builds", lambda: ["onnxruntime", "onnxruntime-gpu"])
    with pytest.raises(BackendUnavailable, match="pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"):
        load_backend(tiny, device="cuda")
    assert "both installed" in ort_backend.OnnxRuntimeBackend.unavailable_reason("cuda")


def test_auto_says_what_it_chose(tiny, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(ort_backend, "installed_builds", lambda: ["onnxruntime"])
    runner = load_backend(tiny)
    assert runner.device == "cpu"
    assert runner.describe().startswith("onnxruntime CPUExecutionProvider (int8); auto: CPU, because onnxruntime here")
    assert load_backend(tiny, device="cpu").describe() == "onnxruntime CPUExecutionProvider (int8)"


class _Session:
    """Stands in for InferenceSession: records what it was asked, runs on what ``runs_on`` says."""

    runs_on = ["CPUExecutionProvider"]
    asked: dict = {}

    def __init__(self, path, options, providers, provider_options):
        _Session.asked = dict(zip(providers, provider_options))

    def get_providers(self):
        return self.runs_on

    def get_inputs(self):
        return [type("Input", (), {"name": "images", "type": "tensor(float)"})()]


def test_a_provider_that_fails_to_load_is_refused_not_run_on_the_cpu(tiny, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", _Session)
    with pytest.raises(BackendUnavailable, match="could not start CUDAExecutionProvider and fell back to CPUExecutionProvider"):
        load_backend(tiny, device="cuda:1")
    assert _Session.asked["CUDAExecutionProvider"] == {"device_id": 1}


def test_tensorrt_provider_gets_precision_and_caches(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", _Session)
    monkeypatch.setattr(_Session, "runs_on", ["TensorrtExecutionProvider", "CUDAExecutionProvider"])
    load_backend(tiny, device="tensorrt", engine_cache=tmp_path / "cache")
    options = _Session.asked["TensorrtExecutionProvider"]
    assert options["trt_int8_enable"] and options["trt_fp16_enable"]          # a Q/DQ file: INT8 plus FP16
    assert options["trt_engine_cache_enable"] and options["trt_timing_cache_enable"]
    assert options["trt_engine_cache_path"] == options["trt_timing_cache_path"] == str(tmp_path / "cache")
    assert (tmp_path / "cache").is_dir()
    fp32 = ort_backend.tensorrt_provider_options("fp32", None, tmp_path, 0)
    assert not fp32["trt_fp16_enable"] and not fp32["trt_int8_enable"]
    assert ort_backend.tensorrt_provider_options("fp32", "fp16", tmp_path, 0)["trt_fp16_enable"]


def test_tensorrt_provider_gets_one_profile_over_every_tile_and_batch_the_counter_uses(tiny, tmp_path, monkeypatch):
    # without an explicit profile the provider rebuilds its engine whenever a batch or tile falls outside
    # the shapes it has seen; the format is trtexec's, "name:BxCxHxW"
    from bcedge.catalogue import resolve_model

    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", _Session)
    monkeypatch.setattr(_Session, "runs_on", ["TensorrtExecutionProvider", "CUDAExecutionProvider"])
    load_backend(resolve_model("default"), device="tensorrt", engine_cache=tmp_path / "cache")
    options = _Session.asked["TensorrtExecutionProvider"]
    meta = read_onnx_meta(resolve_model("default"))
    width, height = meta.input_size
    assert meta.dynamic_input
    assert options["trt_profile_min_shapes"] == f"images:1x3x{meta.stride}x{meta.stride}"
    assert options["trt_profile_opt_shapes"] == f"images:4x3x{height}x{width}"
    assert options["trt_profile_max_shapes"] == "images:8x3x1024x1024"
    load_backend(tiny, device="tensorrt", engine_cache=tmp_path / "cache", max_batch=16)   # fixed input size
    options = _Session.asked["TensorrtExecutionProvider"]
    width, height = read_onnx_meta(tiny).input_size
    assert [options[f"trt_profile_{k}_shapes"] for k in ("min", "opt", "max")] == [
        f"images:{b}x3x{height}x{width}" for b in (1, 4, 16)]


def test_models_of_any_tile_size_run_without_memory_patterns():
    # a pattern planned for one input shape only adds arena blocks when tiles come in many sizes
    from bcedge.catalogue import resolve_model

    backend = load_backend(resolve_model("default"), device="cpu")
    assert backend.meta.dynamic_input and not backend.session.get_session_options().enable_mem_pattern


def test_the_tensorrt_profile_spans_the_counters_largest_tile():
    from bcedge.runtime.tilesize import MAX_SIDE   # backends may not import the runtime: the constant is kept twice

    assert ort_backend.PROFILE_MAX_SIDE == MAX_SIDE
