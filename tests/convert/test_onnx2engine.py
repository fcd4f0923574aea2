"""The engine builder's logic without TensorRT: options, the build plan per version, calibrator batching, caches."""
from __future__ import annotations

import importlib.util
import types

import numpy as np
import pytest

from bcedge.backends import BackendUnavailable
from bcedge.convert.calibration import CalibrationSet
from bcedge.artifact import ModelMeta
from bcedge.convert.onnx2engine import (BuildPlan, CalibrationFeed, EngineOptions, check_quantization_target,
                                        default_cache_paths, make_calibrator, onnx2engine, parse_batch, plan_build)

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def test_batch_and_options_parsing():
    assert parse_batch("1,4,8") == (1, 4, 8)
    assert parse_batch("16") == (1, 16, 16)
    for bad in ("4,2,8", "0,1,1", "1,2", "a,b,c"):
        with pytest.raises(ValueError, match="batch"):
            parse_batch(bad)
    with pytest.raises(ValueError, match="unknown precision"):
        EngineOptions(precision="int4")
    with pytest.raises(ValueError, match="unknown calibrator"):
        EngineOptions(calibrator="legacy")
    with pytest.raises(ValueError, match="workspace"):
        EngineOptions(workspace_mb=0)


def test_plan_for_tensorrt_10_and_8():
    for version in ("10.3.0", "8.6.2"):
        assert plan_build(version, "fp32", EngineOptions(precision="fp32")) == BuildPlan(False)
        assert plan_build(version, "fp32", EngineOptions(precision="fp16")) == BuildPlan(False, ("FP16",))
        plan = plan_build(version, "fp32", EngineOptions(precision="int8", calib="set"))
        assert plan.calibrate and plan.flags == ("INT8", "FP16") and not plan.strongly_typed
        qdq = plan_build(version, "int8", EngineOptions(precision="int8"))
        assert qdq == BuildPlan(False, ("INT8", "FP16"))        # explicit quantization: no calibrator
    assert plan_build("10.3.0", "fp16", EngineOptions(precision="fp16")).strongly_typed  # FP32 islands kept
    assert plan_build("8.6.2", "fp16", EngineOptions(precision="fp16")).flags == ("FP16",)
    with pytest.raises(ValueError, match="needs a calibration set"):
        plan_build("10.3.0", "fp32", EngineOptions(precision="int8"))


def test_plan_for_tensorrt_11_is_strongly_typed():
    assert plan_build("11.1.0", "fp32", EngineOptions(precision="fp32")) == BuildPlan(True)
    fp16 = plan_build("11.1.0", "fp32", EngineOptions(precision="fp16"))
    assert fp16.strongly_typed and fp16.convert_fp16 and not fp16.flags
    assert plan_build("11.1.0", "int8", EngineOptions(precision="int8")) == BuildPlan(True)
    with pytest.raises(ValueError, match="quantize first"):
        plan_build("11.1.0", "fp32", EngineOptions(precision="int8", calib="set"))
    with pytest.raises(ValueError, match="--precision int8"):
        plan_build("11.1.0", "int8", EngineOptions(precision="fp16"))
    noted = plan_build("10.3.0", "int8", EngineOptions(precision="int8", calib="set"))
    assert "not used" in noted.notes[0]
    assert plan_build("10.3.0", "int8", EngineOptions(precision="int8", strongly_typed=True)).strongly_typed


def test_calibration_feed_serves_full_batches_and_keeps_the_cache(calib_dir, tmp_path):
    calib = CalibrationSet.load(calib_dir)              # 16 tiles
    uploaded = []

    def upload(batch):
        uploaded.append(batch.copy())
        return 0xC0FFEE

    feed = CalibrationFeed(calib, batch_size=5, cache_path=tmp_path / "c" / "m.calib", upload=upload)
    pointers = []
    while (got := feed.get_batch(["images"])) is not None:
        pointers.append(got)
    assert pointers == [[0xC0FFEE]] * 3 and feed.served == 3          # the last, partial batch is dropped
    assert [b.shape for b in uploaded] == [(5, 3, 64, 64)] * 3
    assert np.allclose(uploaded[1][0], calib.tiles[5].transpose(2, 0, 1) / 255)
    assert feed.read_cache() is None
    feed.write_cache(memoryview(b"TRT-8601-EntropyCalibration2\n"))
    assert feed.read_cache() == b"TRT-8601-EntropyCalibration2\n"
    again = CalibrationFeed(None, 5, tmp_path / "c" / "m.calib", upload)   # a rebuild from the cache alone
    assert again.get_batch(["images"]) is None and again.read_cache().startswith(b"TRT")


def test_calibrator_delegates_to_the_feed(calib_dir, tmp_path):
    class Base:  # stands in for trt.IInt8EntropyCalibrator2 / IInt8MinMaxCalibrator
        def __init__(self):
            self.base_initialised = True

    fake_trt = types.SimpleNamespace(IInt8EntropyCalibrator2=type("Entropy", (Base,), {}),
                                     IInt8MinMaxCalibrator=type("MinMax", (Base,), {}))
    feed = CalibrationFeed(CalibrationSet.load(calib_dir), 8, tmp_path / "x.calib", lambda b: 7)
    calibrator = make_calibrator(fake_trt, "minmax", feed)
    assert isinstance(calibrator, fake_trt.IInt8MinMaxCalibrator) and calibrator.base_initialised
    assert calibrator.get_batch_size() == 8
    assert calibrator.get_batch(["images"]) == [7] and calibrator.get_batch(["images"]) == [7]
    assert calibrator.get_batch(["images"]) is None
    calibrator.write_calibration_cache(b"cache")
    assert calibrator.read_calibration_cache() == b"cache"


def test_cache_paths_are_keyed_by_model_and_set(calib_dir, tmp_path):
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(b"model-a")
    calib = CalibrationSet.load(calib_dir)
    cal, timing = default_cache_paths(onnx_path, tmp_path / "out" / "m.int8.engine", calib, EngineOptions())
    assert cal.parent == timing.parent == tmp_path / "out" and timing.name == "timing.cache"
    assert calib.manifest["tiles_sha256"][:12] in cal.name and cal.name.endswith(".entropy.calib")
    onnx_path.write_bytes(b"model-b")
    assert default_cache_paths(onnx_path, tmp_path / "out" / "m.int8.engine", calib, EngineOptions())[0] != cal
    chosen = EngineOptions(calib_cache=tmp_path / "mine.calib", timing_cache=tmp_path / "t.cache")
    assert default_cache_paths(onnx_path, tmp_path / "e", calib, chosen) == (tmp_path / "mine.calib", tmp_path / "t.cache")


@pytest.mark.skipif(HAS_TRT, reason="checks the message shown when TensorRT is missing")
def test_build_without_tensorrt_says_so(exported, tmp_path):
    _, onnx_path = exported("fcos_efficientnet_lite0")
    with pytest.raises(BackendUnavailable, match="TensorRT is not installed"):
        onnx2engine(onnx_path, tmp_path / "m.engine", EngineOptions(precision="fp16"))


def test_cpu_quantized_files_are_refused_for_tensorrt():
    meta = ModelMeta(arch="a_b", head="a", backbone="b", class_names=["x"], input_size=(64, 64), precision="int8")
    meta.recipe = {"convert": [{"step": "torch2onnx"}, {"step": "quantize", "target": "tensorrt"}]}
    check_quantization_target(meta, "m.int8.onnx")
    meta.recipe["convert"][-1]["target"] = "cpu"
    with pytest.raises(ValueError, match="--target tensorrt"):
        check_quantization_target(meta, "m.int8.onnx")


def test_input_size_profiles_and_targets():
    from bcedge.convert.onnx2engine import input_profile, parse_sizes, with_targets

    assert parse_sizes("320x320,640x480,1280x960") == ((320, 320), (640, 480), (1280, 960))
    for bad in ("640x480", "1x2x3,1x1,1x1", "axb,1x1,1x1"):
        with pytest.raises(ValueError, match="WxH,WxH,WxH"):
            parse_sizes(bad)
    dynamic = ModelMeta(arch="a_b", head="a", backbone="b", class_names=["x"], input_size=(640, 480), stride=32,
                        dynamic_input=True)
    assert input_profile(dynamic) == ((320, 256), (640, 480), (1280, 960))     # half to twice, on the stride
    assert input_profile(dynamic, fixed=True) == ((640, 480),) * 3             # DLA
    with pytest.raises(ValueError, match="multiples of the model's stride 32"):
        input_profile(dynamic, ((100, 100), (640, 480), (1280, 960)))
    with pytest.raises(ValueError, match="MIN <= OPT <= MAX"):
        input_profile(dynamic, ((640, 480), (320, 256), (1280, 960)))
    plan = with_targets(plan_build("8.5.2", "fp32", EngineOptions(precision="fp16")), "8.5.2",
                        EngineOptions(precision="fp16", dla_core=0))
    assert plan.flags == ("FP16", "GPU_FALLBACK") and "DLA core 0" in plan.notes[0]
    with pytest.raises(ValueError, match="came in 8.6"):
        with_targets(plan, "8.5.2", EngineOptions(version_compatible=True))
    assert "VERSION_COMPATIBLE" in with_targets(plan, "8.6.2", EngineOptions(version_compatible=True)).flags
