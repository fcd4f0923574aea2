"""FP32 ONNX -> FP16 ONNX with the sensitive operations kept in FP32.

TensorRT 11 builds strongly typed networks only: the precision of every layer comes from the ONNX,
so the mixed-precision decision has to be made here (TensorRT 10 can instead take the FP32 graph and
``BuilderFlag.FP16``; see ``onnx2engine``). Kept in FP32:

* the heads' tail (``graph.head_tail_nodes``): final sigmoid/softmax/sqrt, the per-level reshapes and
  the box decoding against the anchors, whose pixel coordinates would lose up to 0.5 px in FP16;
* normalisation layers (GroupNorm exports as InstanceNormalization; its variance overflows FP16);
* ``Exp`` anywhere (box sizes) and the ops ONNX Runtime's converter blocks by default.

Input and output stay float32 (``keep_io_types``), so backends feed and read it like the FP32 graph.
"""
from __future__ import annotations

from pathlib import Path

from bcedge.convert import graph

FP32_OPS = ("InstanceNormalization", "GroupNormalization", "LayerNormalization", "BatchNormalization",
            "Exp", "Softmax", "Sqrt", "Resize", "ReduceMean", "Pow")


def _converter():
    """ONNX Runtime ships the converter (onnxruntime.transformers.float16); onnxconverter-common has the same one."""
    try:
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    except ImportError:
        try:
            from onnxconverter_common.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
        except ImportError as exc:
            raise ImportError("FP16 conversion needs onnxruntime (with its transformers tools) or onnxconverter-common") from exc
    return convert_float_to_float16, DEFAULT_OP_BLOCK_LIST


def to_fp16(model, keep_tail: bool = True) -> tuple[object, dict]:
    """Convert an in-memory FP32 ``ModelProto``; returns (model, summary of what stayed FP32)."""
    convert, default_block = _converter()
    graph.name_nodes(model)
    tail = graph.head_tail_nodes(model) if keep_tail else []
    ops = sorted(set(default_block) | set(FP32_OPS))
    total = len(model.graph.node)
    blocked_ops = sum(1 for n in model.graph.node if n.op_type in ops and n.name not in tail)
    converted = convert(model, keep_io_types=True, op_block_list=ops, node_block_list=tail)
    graph.sort_nodes(converted)
    summary = {"nodes": total, "fp32_tail_nodes": len(tail), "fp32_op_nodes": blocked_ops, "fp32_ops": ops}
    return converted, summary


def onnx2fp16(src: str | Path, out: str | Path, keep_tail: bool = True) -> Path:
    """Read a bcedge FP32 ONNX file, write its FP16 version with metadata (precision fp16)."""
    model, meta = graph.load(src)
    if meta.precision != "fp32":
        raise ValueError(f"{src}: is {meta.precision}; FP16 conversion starts from an fp32 export")
    converted, summary = to_fp16(model, keep_tail)
    meta.precision = "fp16"
    graph.record_step(meta, "onnx2fp16", keep_io_types=True, **{k: v for k, v in summary.items() if k != "fp32_ops"})
    return graph.save(converted, out, meta)
