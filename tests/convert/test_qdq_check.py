"""The TensorRT Q/DQ check on hand-made graphs: each rule of TensorRT's parser named with its node."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from bcedge.convert.qdq_check import check_tensorrt_qdq, tensorrt_qdq_problems  # noqa: E402


def _conv_qdq(bias_dtype=np.float32, zero=0, zero_dtype=np.int8, act_scale=(0.02,)):
    """x -> Q -> DQ -> Conv(W via DQ, bias maybe via DQ) -> y."""
    inits = [numpy_helper.from_array(np.array(act_scale, np.float32).reshape(() if len(act_scale) == 1 else (-1,)), "a_scale"),
             numpy_helper.from_array(np.array(zero, zero_dtype), "a_zero"),
             numpy_helper.from_array(np.ones((4, 3, 3, 3), np.int8), "w_q"),
             numpy_helper.from_array(np.full((4,), 0.01, np.float32), "w_scale"),
             numpy_helper.from_array(np.zeros((4,), np.int8), "w_zero")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "a_scale", "a_zero"], ["x_q"], name="x_Q"),
             helper.make_node("DequantizeLinear", ["x_q", "a_scale", "a_zero"], ["x_dq"], name="x_DQ"),
             helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], name="w_DQ", axis=0)]
    if bias_dtype == np.int32:
        inits += [numpy_helper.from_array(np.arange(4, dtype=np.int32), "b_q"),
                  numpy_helper.from_array(np.full((4,), 2e-4, np.float32), "b_scale"),
                  numpy_helper.from_array(np.zeros((4,), np.int32), "b_zero")]
        nodes.append(helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zero"], ["b"], name="conv.bias_DequantizeLinear"))
    else:
        inits.append(numpy_helper.from_array(np.zeros((4,), np.float32), "b"))
    nodes.append(helper.make_node("Conv", ["x_dq", "w", "b"], ["y"], name="conv"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_tensorrt_shaped_graph_passes(tmp_path):
    model = _conv_qdq()
    assert tensorrt_qdq_problems(model) == []
    onnx.save(model, str(tmp_path / "ok.onnx"))
    check_tensorrt_qdq(tmp_path / "ok.onnx")


def test_quantized_bias_is_refused_with_the_parsers_reason(tmp_path):
    problems = tensorrt_qdq_problems(_conv_qdq(bias_dtype=np.int32))
    assert len(problems) == 1 and problems[0].startswith("conv.bias_DequantizeLinear: dequantizes a int32 constant 'b_q'")
    assert "a quantized bias" in problems[0] and "only activation types allowed" in problems[0]
    onnx.save(_conv_qdq(bias_dtype=np.int32), str(tmp_path / "m.int8.onnx"))
    with pytest.raises(ValueError, match=r"m.int8.onnx: the Q/DQ graph is not one TensorRT parses: .*--target tensorrt"):
        check_tensorrt_qdq(tmp_path / "m.int8.onnx")


@pytest.mark.parametrize("kwargs, message", [
    ({"zero": 3}, "x_Q: zero point 'a_zero' is int8 with values [3]"),
    ({"zero": 128, "zero_dtype": np.uint8}, "x_Q: zero point 'a_zero' is uint8"),
    ({"act_scale": (0.02, 0.03, 0.04)}, "x_Q: quantizes an activation per channel"),
    ({"act_scale": (0.0,)}, "x_Q: scale 'a_scale' has values that are not positive"),
])
def test_each_rule_names_its_node(kwargs, message):
    assert any(p.startswith(message) for p in tensorrt_qdq_problems(_conv_qdq(**kwargs)))
