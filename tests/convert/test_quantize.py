"""Explicit INT8: a Q/DQ graph that keeps the heads' last layers in FP32, runs in ONNX Runtime, stays close."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")

from bcedge.artifact import read_onnx_meta  # noqa: E402
from bcedge.backends import load_backend  # noqa: E402
from bcedge.convert import graph  # noqa: E402
from bcedge.convert.calibration import CalibrationError, CalibrationSet  # noqa: E402
from bcedge.convert.qdq_check import tensorrt_qdq_problems  # noqa: E402
from bcedge.convert.quantize import QuantOptions, quantize  # noqa: E402
from bcedge.parity import TOLERANCES, compare, tile_batches  # noqa: E402


def _quantized_inputs(model) -> dict[str, bool]:
    """node name -> whether any of its inputs comes from a DequantizeLinear."""
    producers = {t: n for n in model.graph.node for t in n.output}
    return {n.name: any(producers.get(t) is not None and producers[t].op_type == "DequantizeLinear" for t in n.input)
            for n in model.graph.node}


def test_qdq_int8_export(exported, calib_dir, tmp_path):
    _, fp32 = exported("fcos_efficientnet_lite0", pretrained=True)
    cache = tmp_path / "ranges.json"
    out = quantize(fp32, calib_dir, tmp_path / "m.int8.onnx", QuantOptions(method="minmax", limit=8), cache=cache)
    assert cache.is_file() and "/head/" in cache.read_text()   # tensor ranges, reused by a rebuild with --cache
    model = onnx.load(str(out))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 20 and ops.count("DequantizeLinear") > 20
    scales = [t for t in model.graph.initializer if t.name.endswith("zero_point")]
    assert scales and all(not np.any(onnx.numpy_helper.to_array(z)) for z in scales)  # symmetric: TensorRT needs 0
    # TensorRT's parser refuses DequantizeLinear of INT32 constants: biases stay FP32, every Q/DQ is TensorRT's
    inits = {t.name: t for t in model.graph.initializer}
    dq_types = {inits[n.input[0]].data_type for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits}
    assert dq_types == {onnx.TensorProto.INT8}
    assert tensorrt_qdq_problems(model) == []
    fed = _quantized_inputs(model)
    source = onnx.load(str(fp32))
    final = graph.final_compute_nodes(source)
    assert len(final) == 5 * 3  # class logits, box regression, centerness on each of P3..P7
    assert not any(fed[name] for name in final), "the heads' last convolutions stay FP32"
    assert not any(fed[name] for name in graph.head_tail_nodes(source))
    assert sum(fed[n.name] for n in model.graph.node if n.op_type == "Conv") > 0.8 * ops.count("Conv")
    meta = read_onnx_meta(out)
    step = meta.recipe["convert"][-1]
    assert meta.precision == "int8" and step["step"] == "quantize" and step["calibration"]["tiles"] == 8
    assert step["target"] == "tensorrt" and step["activations"] == "QInt8 symmetric" and step["biases"] == "FP32"
    assert step["calibration"]["sha256"] == [CalibrationSet.load(calib_dir).manifest["tiles_sha256"]]
    assert step["calibration"]["draws"] == 1

    ref, int8 = load_backend(fp32), load_backend(out)
    batches = tile_batches(np.asarray(CalibrationSet.load(calib_dir).tiles), batch_size=8)
    floor = float(np.quantile(ref.infer(batches[0])[1], 0.995))
    report = compare({"fp32": ref, "int8": int8}, batches, score_floor=floor)
    assert report.pairs[0].tolerance == TOLERANCES["int8"]
    assert report.pairs[0].raw_ok, report.format()



def test_ranges_averaged_over_draws(exported, calib_dir, tiny_voc, tmp_path):
    """Several calibration sets: each tensor's range is the mean of the sets' own ranges."""
    import json

    from bcedge.convert.calibration import TileSpec, build_calibration_set
    from bcedge.data import load_dataset

    _, fp32 = exported("fcos_efficientnet_lite0", pretrained=True)
    other = build_calibration_set(load_dataset(tiny_voc), tmp_path / "other", TileSpec((64, 64), overlap=8),
                                  count=16, seed=1).root
    options = QuantOptions(method="minmax", limit=8)
    alone = [tmp_path / "a.json", tmp_path / "b.json"]
    for calib, cache in zip((calib_dir, other), alone):
        quantize(fp32, calib, tmp_path / "one.onnx", options, cache=cache)
    averaged = tmp_path / "both.json"
    out = quantize(fp32, [calib_dir, other], tmp_path / "both.onnx", options, cache=averaged)
    ranges = [json.loads(p.read_text())["data"] for p in (*alone, averaged)]
    differ = [t for t in ranges[0] if ranges[0][t]["highest"] != ranges[1][t]["highest"]]
    assert differ, "two draws of tiles give some tensor other ranges"
    for tensor in differ:
        a, b, mean = (r[tensor]["highest"]["data"][0] for r in ranges)
        assert mean == pytest.approx((a + b) / 2, rel=1e-6)
    calibration = read_onnx_meta(out).recipe["convert"][-1]["calibration"]
    assert calibration["draws"] == 2 and calibration["tiles"] == 16 and len(calibration["sha256"]) == 2


def test_quantize_refuses_mismatched_inputs(exported, calib_dir, tmp_path):
    _, fp32 = exported("fcos_efficientnet_lite0", pretrained=True)
    with pytest.raises(CalibrationError, match="missing"):
        quantize(fp32, tmp_path, tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="unknown calibration method"):
        QuantOptions(method="magic")
    with pytest.raises(ValueError, match="unknown quantization target"):
        QuantOptions(target="dsp")


def test_cpu_target_quantizes_whole_chains_asymmetrically(exported, calib_dir, tmp_path):
    _, fp32 = exported("ssdlite_efficientnet_lite0")
    out = quantize(fp32, calib_dir, tmp_path / "m.cpu.onnx", QuantOptions(target="cpu", method="minmax", limit=4))
    model = onnx.load(str(out))
    fed = _quantized_inputs(model)
    quantized_ops = {n.op_type for n in model.graph.node if fed[n.name]}
    assert "Conv" in quantized_ops and quantized_ops - {"Conv", "QuantizeLinear"}   # more than convolutions
    producers = {t: n for n in model.graph.node for t in n.output}
    stem = [n for n in model.graph.node if n.op_type in graph.COMPUTE_OPS][0]
    assert stem.input[1] not in producers                   # the stem keeps float weights on this target too
    zero_points = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.name.endswith("zero_point")]
    assert any(z.dtype == np.uint8 for z in zero_points)
    problems = tensorrt_qdq_problems(model)       # what TensorRT would refuse: unsigned zero points, INT32 biases
    assert any("TensorRT needs symmetric INT8" in p for p in problems) and any("a quantized bias" in p for p in problems)
    assert read_onnx_meta(out).recipe["convert"][-1]["target"] == "cpu"


def test_tensorrt_target_keeps_the_stem_in_float_and_calibrates_min_max_by_default(exported, calib_dir, tmp_path):
    # what held the default model within 0.5 mAP50 points of FP32 (int8_tensorrt_target_trials.md)
    from bcedge.cli import main

    _, fp32 = exported("fcos_efficientnet_lite0")
    out = tmp_path / "stem_fp32.onnx"
    assert main(["quantize", str(fp32), "--calib", str(calib_dir), "--out", str(out)]) == 0
    model = onnx.load(str(out))
    quantized = _quantized_inputs(model)
    convs = [n for n in model.graph.node if n.op_type in graph.COMPUTE_OPS]
    assert not quantized[convs[0].name]                     # the stem takes float weights and pixels
    assert sum(quantized[n.name] for n in convs[1:]) > 10   # the rest is INT8
    assert read_onnx_meta(out).recipe["convert"][-1]["method"] == "minmax"
    whole = tmp_path / "stem_int8.onnx"
    assert main(["quantize", str(fp32), "--calib", str(calib_dir), "--out", str(whole), "--no-keep-first-conv"]) == 0
    assert _quantized_inputs(onnx.load(str(whole)))[convs[0].name]


def test_keep_fp32_leaves_the_named_nodes_in_float(exported, calib_dir, tmp_path):
    from bcedge.cli import main

    _, fp32 = exported("fcos_efficientnet_lite0")
    out = tmp_path / "partly_fp32.onnx"
    assert main(["quantize", str(fp32), "--calib", str(calib_dir), "--out", str(out), "--keep-fp32", "/head/",
                 "--method", "minmax"]) == 0
    model = onnx.load(str(out))
    producers = {t: n for n in model.graph.node for t in n.output}
    int8_weights = {n.name: n.input[1] in producers and producers[n.input[1]].op_type == "DequantizeLinear"
                    for n in model.graph.node if n.op_type in graph.COMPUTE_OPS}
    head = [name for name in int8_weights if name.startswith("/head/")]
    assert len(head) > 4 and not any(int8_weights[name] for name in head)   # the towers too, not only the last convs
    assert sum(int8_weights[name] for name in int8_weights if not name.startswith("/head/")) > 10
