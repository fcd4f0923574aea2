"""Does a Q/DQ ONNX graph hold only what TensorRT's ONNX parser takes? Checked before anyone waits for a build.

TensorRT builds INT8 from Q/DQ graphs ("explicit quantization", the only INT8 route on TensorRT 11)
under these rules (TensorRT developer guide, "Working with Quantized Types"; parser errors reported in
onnx/onnx-tensorrt#850 and microsoft/onnxruntime#14229):

* a ``DequantizeLinear`` input is a signed INT8 tensor: an INT32 constant (a bias ONNX Runtime
  quantized) fails with "only activation types allowed as input to this layer";
* quantization is symmetric: zero points, when given, are 0 and INT8 (UINT8 is the ``cpu`` target's);
* scales are constants (initializers or ``Constant`` nodes), positive and finite;
* activations are quantized per tensor (a ``QuantizeLinear`` scale is a scalar); weights may be per channel.

``tensorrt_qdq_problems`` lists every violation, naming the node; ``check_tensorrt_qdq`` raises on any.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def _constants(model) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def tensorrt_qdq_problems(model) -> list[str]:
    """Each way the Q/DQ nodes of ``model`` (an ``onnx.ModelProto``) break TensorRT's parsing rules."""
    constants = _constants(model)
    problems = []
    for node in model.graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        name = node.name or node.output[0]
        x, scale = node.input[0], node.input[1]
        zero = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if node.op_type == "DequantizeLinear" and x in constants and constants[x].dtype != np.int8:
            kind = "a quantized bias" if constants[x].dtype == np.int32 else "not signed INT8"
            problems.append(f"{name}: dequantizes a {constants[x].dtype} constant {x!r} ({kind}); TensorRT's parser "
                            "takes INT8 weights only (\"only activation types allowed as input to this layer\")")
        if scale not in constants:
            problems.append(f"{name}: scale {scale!r} is computed, not a constant")
        elif not (np.all(np.isfinite(constants[scale])) and np.all(constants[scale] > 0)):
            problems.append(f"{name}: scale {scale!r} has values that are not positive and finite")
        elif node.op_type == "QuantizeLinear" and constants[scale].size > 1:
            problems.append(f"{name}: quantizes an activation per channel; TensorRT quantizes activations per tensor")
        if zero is None:
            continue
        if zero not in constants:
            problems.append(f"{name}: zero point {zero!r} is computed, not a constant")
        elif constants[zero].dtype == np.uint8 or np.any(constants[zero]):
            problems.append(f"{name}: zero point {zero!r} is {constants[zero].dtype} with values "
                            f"{np.unique(constants[zero])[:4].tolist()}; TensorRT needs symmetric INT8 (zero point 0)")
    return problems


def check_tensorrt_qdq(model_or_path, source: str | None = None) -> None:
    """Raise ValueError naming the file and the first problems when the Q/DQ graph is not TensorRT's."""
    import onnx

    model = onnx.load(str(model_or_path), load_external_data=False) if isinstance(model_or_path, (str, Path)) else model_or_path
    source = source or str(model_or_path)
    problems = tensorrt_qdq_problems(model)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(f"{source}: the Q/DQ graph is not one TensorRT parses: {'; '.join(problems[:3])}{more}. "
                         "Quantize the FP32 export again with `bcedge quantize --target tensorrt`")
