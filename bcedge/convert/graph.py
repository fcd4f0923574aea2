"""ONNX graph helpers every converter shares: load, simplify, check, find the heads' tail, save with metadata.

No torch here: FP16 conversion and quantization run on a machine without it.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from bcedge.artifact import INPUT_NAME, OUTPUT_NAMES, ArtifactError, ModelMeta, read_onnx_meta, write_onnx_meta
# Ops whose outputs feed everything after them: a node is "compute" when it or a descendant is one of these.
COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "QLinearConv", "MatMul", "Gemm", "RoiAlign"})


def load(path: str | Path):
    """Load an ONNX model with its bcedge metadata; errors name the file."""
    import onnx

    path = Path(path)
    meta = read_onnx_meta(path)  # raises ArtifactError naming the file
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise ArtifactError(f"{path}: not a readable ONNX model ({exc})") from exc
    check_io(model, str(path))
    return model, meta


def check_io(model, source: str) -> None:
    """The deploy-graph contract: one input ``images`` (B, 3, H, W), outputs ``boxes`` and ``scores``."""
    inputs = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    outputs = [o.name for o in model.graph.output]
    if inputs != [INPUT_NAME] or sorted(outputs) != sorted(OUTPUT_NAMES):
        raise ArtifactError(f"{source}: expected input {INPUT_NAME!r} and outputs {', '.join(OUTPUT_NAMES)}; "
                            f"found inputs {inputs}, outputs {outputs}")


def simplify(model) -> tuple[Any, str]:
    """Fold constants and remove shape plumbing with onnxslim (or onnxsim); returns (model, tool used)."""
    try:
        import onnxslim
    except ImportError:
        onnxslim = None
    if onnxslim is not None:
        return onnxslim.slim(model), f"onnxslim {onnxslim.__version__}"
    try:
        import onnxsim
    except ImportError:
        return model, "none (install onnxslim to simplify)"
    simplified, ok = onnxsim.simplify(model)
    return (simplified, f"onnxsim {onnxsim.__version__}") if ok else (model, "none (onnxsim check failed)")


def name_nodes(model) -> None:
    """Give every unnamed node a unique name (node lists for FP16/INT8 exclusion refer to names)."""
    seen = {n.name for n in model.graph.node if n.name}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in seen:
                name += "_"
            node.name = name
            seen.add(name)


def head_tail_nodes(model) -> list[str]:
    """Names of the nodes after the last compute op (convolution, matmul) on every path to an output.

    That is the heads' final activations (sigmoid, softmax, sqrt), the reshapes that gather the
    per-level outputs, and the box decoding against the constant anchors: the part of the graph that
    FP16 and INT8 should leave in FP32 (pixel coordinates up to 640 lose 0.5 px in FP16, and exp()
    of a quantized delta scales its error).
    """
    before, after = _compute_reach(model)
    return [n.name for n in model.graph.node if after[n.name] and not before[n.name] and n.op_type not in COMPUTE_OPS]


def first_compute_nodes(model) -> list[str]:
    """The name of the first compute node (the stem convolution, which sees raw pixels), as a list."""
    return [n.name for n in model.graph.node if n.op_type in COMPUTE_OPS][:1]


def final_compute_nodes(model) -> list[str]:
    """Names of the compute nodes (convolutions) with no compute node after them: each head's last layer."""
    before, _ = _compute_reach(model)
    return [n.name for n in model.graph.node if n.op_type in COMPUTE_OPS and not before[n.name]]


def proposal_nodes(model) -> list[str]:
    """Names of the nodes that compute the boxes a RoiAlign samples: a two-stage detector's proposal stage.

    Walks up from every RoiAlign's rois and batch-index inputs to the region proposal network's last
    convolutions (included, not walked past); shape-only inputs are not followed. These nodes decode,
    clip, rank and suppress pixel coordinates: quantized, the proposals drift off the cells (Faster
    R-CNN's mAP50 fell from 0.90 to 0.43 in INT8), and the second stage cannot recover.
    """
    name_nodes(model)
    producers = {t: n for n in model.graph.node for t in n.output}
    found: dict[str, object] = {}
    pending = [t for n in model.graph.node if n.op_type == "RoiAlign" for t in n.input[1:]]
    while pending:
        node = producers.get(pending.pop())
        if node is None or node.name in found:
            continue
        found[node.name] = node
        if node.op_type not in COMPUTE_OPS and node.op_type != "Shape":
            pending.extend(node.input)
    return list(found)


def _compute_reach(model) -> tuple[dict[str, bool], dict[str, bool]]:
    """Per node name: (a compute op lies downstream of it, a compute op lies upstream of it)."""
    name_nodes(model)
    order = _topological(model)
    consumers: dict[str, list] = defaultdict(list)
    for node in order:
        for tensor in node.input:
            consumers[tensor].append(node)
    producers = {t: n for n in order for t in n.output}
    downstream: dict[str, bool] = {}
    for node in reversed(order):
        below = [c for t in node.output for c in consumers[t]]
        downstream[node.name] = any(c.op_type in COMPUTE_OPS or downstream[c.name] for c in below)
    upstream: dict[str, bool] = {}
    for node in order:
        above = [producers[t] for t in node.input if t in producers]
        upstream[node.name] = any(p.op_type in COMPUTE_OPS or upstream[p.name] for p in above)
    return downstream, upstream


def _topological(model) -> list:
    """Nodes in dependency order (ONNX requires it already; this tolerates graphs that break the rule)."""
    producers = {t: n for n in model.graph.node for t in n.output}
    done: set[str] = set()
    order: list = []
    for root in model.graph.node:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if node.name in done:
                continue
            if expanded:
                done.add(node.name)
                order.append(node)
                continue
            stack.append((node, True))
            stack.extend((producers[t], False) for t in node.input if t in producers and producers[t].name not in done)
    return order


def sort_nodes(model) -> None:
    """Reorder nodes topologically in place (converters that append Cast nodes leave them out of order)."""
    name_nodes(model)
    order = _topological(model)
    del model.graph.node[:]
    model.graph.node.extend(order)


def set_io_shapes(model, batch: str, input_hw: tuple, anchors: int | str, classes: int) -> None:
    """Declare the contract in the graph: images (B, 3, H, W), boxes (B, A, 4), scores (B, A, C)."""
    shapes = {INPUT_NAME: [batch, 3, *input_hw], "boxes": [batch, anchors, 4], "scores": [batch, anchors, classes]}
    for value in [*model.graph.input, *model.graph.output]:
        if value.name not in shapes:
            continue
        dims = value.type.tensor_type.shape.dim
        del dims[:]
        for size in shapes[value.name]:
            dim = dims.add()
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = int(size)


def record_step(meta: ModelMeta, step: str, **details: Any) -> None:
    """Append one conversion step (what was done, with which tools) to the artifact's provenance."""
    meta.recipe = dict(meta.recipe)
    meta.recipe["convert"] = [*meta.recipe.get("convert", []), {"step": step, **details}]


def save(model, path: str | Path, meta: ModelMeta, check: bool = True) -> Path:
    """Write ``model`` with ``meta`` in its ``metadata_props``, checked by onnx.checker, atomically."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta.versions = {**meta.versions, "onnx": onnx.__version__}
    write_onnx_meta(model, meta)
    if check:
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as exc:
            raise ArtifactError(f"{path}: the converted graph fails onnx.checker ({exc})") from exc
    tmp = path.with_name(path.name + ".tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)
    return path
