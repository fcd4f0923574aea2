"""Graph helpers on a hand-made graph, and FP16 conversion of a real export checked in ONNX Runtime."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from bcedge.artifact import ArtifactError, ModelMeta, read_onnx_meta  # noqa: E402
from bcedge.convert import graph  # noqa: E402


def _toy():
    """images -> Sub -> Conv -> Relu -> {Conv cls -> Sigmoid -> scores, Conv reg -> Reshape -> Mul -> Add -> boxes}."""
    init = [numpy_helper.from_array(np.full((1, 3, 1, 1), 0.5, np.float32), "mean"),
            numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w0"),
            numpy_helper.from_array(np.ones((2, 4, 1, 1), np.float32), "wc"),
            numpy_helper.from_array(np.ones((4, 4, 1, 1), np.float32), "wr"),
            numpy_helper.from_array(np.array([0, -1, 4], np.int64), "shape"),
            numpy_helper.from_array(np.full((1, 1, 4), 8.0, np.float32), "stride"),
            numpy_helper.from_array(np.full((1, 1, 4), 2.0, np.float32), "anchor")]
    nodes = [helper.make_node("Sub", ["images", "mean"], ["x0"], name="norm"),
             helper.make_node("Conv", ["x0", "w0"], ["x1"], name="body"),
             helper.make_node("Relu", ["x1"], ["x2"], name="act"),
             helper.make_node("Conv", ["x2", "wc"], ["c"], name="cls_conv"),
             helper.make_node("Sigmoid", ["c"], ["c1"], name="sigmoid"),
             helper.make_node("Transpose", ["c1"], ["c2"], perm=[0, 2, 3, 1], name="perm"),
             helper.make_node("Reshape", ["c2", "shape2"], ["scores"], name="flat_scores"),
             helper.make_node("Constant", [], ["shape2"], name="shape_const",
                              value=numpy_helper.from_array(np.array([0, -1, 2], np.int64))),
             helper.make_node("Conv", ["x2", "wr"], ["r"], name="reg_conv"),
             helper.make_node("Transpose", ["r"], ["r1"], perm=[0, 2, 3, 1], name="perm_r"),
             helper.make_node("Reshape", ["r1", "shape"], ["r2"], name="flat_boxes"),
             helper.make_node("Mul", ["r2", "stride"], ["r3"], name="scale"),
             helper.make_node("Add", ["r3", "anchor"], ["boxes"], name="decode")]
    g = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 4, 4])],
                          [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)], init)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_head_tail_and_final_convs():
    model = _toy()
    assert set(graph.head_tail_nodes(model)) == {"sigmoid", "perm", "flat_scores", "perm_r", "flat_boxes", "scale", "decode"}
    assert sorted(graph.final_compute_nodes(model)) == ["cls_conv", "reg_conv"]


def test_sort_and_save_with_metadata(tmp_path):
    model = _toy()
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))          # out of order: the checker refuses it
    graph.sort_nodes(model)
    graph.set_io_shapes(model, "batch", (4, 4), anchors=16, classes=2)
    meta = ModelMeta(arch="fcos_toy", head="fcos", backbone="toy", class_names=["a", "b"], input_size=(4, 4))
    graph.record_step(meta, "test", note=1)
    path = graph.save(model, tmp_path / "toy.onnx", meta)
    back = read_onnx_meta(path)
    assert back.recipe["convert"] == [{"step": "test", "note": 1}] and "onnx" in back.versions
    import onnxruntime as ort

    boxes, scores = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        ["boxes", "scores"], {"images": np.ones((2, 3, 4, 4), np.float32)})
    assert boxes.shape == (2, 16, 4) and scores.shape == (2, 16, 2)
    assert np.allclose(boxes, 2.0 + 8.0 * 3.0 * 4.0 * 0.5)  # (1-0.5)*3 channels -> relu -> *4 -> *8 + 2
    loaded, _ = graph.load(path)
    assert len(loaded.graph.node) == len(nodes)


def test_load_refuses_foreign_graphs(tmp_path):
    model = _toy()
    onnx.save(model, str(tmp_path / "plain.onnx"))
    with pytest.raises(ArtifactError, match="no bcedge metadata"):
        graph.load(tmp_path / "plain.onnx")
    model.graph.output[0].name = "dets"
    with pytest.raises(ArtifactError, match="expected input 'images'"):
        graph.check_io(model, "x.onnx")


def test_fp16_keeps_sensitive_ops_fp32_and_matches_fp32(exported, tmp_path):
    """A pretrained backbone: random ones give near-constant features that GroupNorm blows up in any precision."""
    from bcedge.backends import load_backend
    from bcedge.convert.onnx2fp16 import onnx2fp16
    from bcedge.parity import TOLERANCES, compare, random_batches

    _, fp32 = exported("fcos_efficientnet_lite0", pretrained=True)
    fp16 = onnx2fp16(fp32, tmp_path / "m.fp16.onnx")
    model = onnx.load(str(fp16))
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]}
    init_types = {t.name: t.data_type for t in model.graph.initializer}
    types.update(init_types)
    half, single = TensorProto.FLOAT16, TensorProto.FLOAT
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert sum(types.get(n.input[1]) == half for n in convs) > 0.9 * len(convs)   # weights in FP16
    for node in model.graph.node:
        if node.op_type in ("Sigmoid", "Sqrt", "InstanceNormalization"):
            assert types.get(node.input[0]) == single, f"{node.name} ({node.op_type}) must stay FP32"
    assert types["images"] == single and types["boxes"] == single and types["scores"] == single
    meta = read_onnx_meta(fp16)
    assert meta.precision == "fp16" and meta.recipe["convert"][-1]["step"] == "onnx2fp16"
    assert meta.recipe["convert"][-1]["fp32_tail_nodes"] > 0

    ref, half_runner = load_backend(fp32), load_backend(fp16)
    batches = random_batches(ref.meta, images=4, batch_size=2)
    floor = float(np.quantile(ref.infer(batches[0])[1], 0.995))
    report = compare({"fp32": ref, "fp16": half_runner}, batches, score_floor=floor)
    assert report.ok, report.format()
    assert report.pairs[0].tolerance == TOLERANCES["fp16"] and report.pairs[0].detections[0] > 0
    assert 0 < report.pairs[0].box_max_abs < 1.0

    with pytest.raises(ValueError, match="starts from an fp32 export"):
        onnx2fp16(fp16, tmp_path / "twice.onnx")


def test_proposal_nodes_are_a_two_stage_heads_rpn_tail(exported):
    """INT8 must leave the proposal stage in FP32: it is found up to the RPN's last convs, and only in two-stage graphs."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(exported("faster_rcnn_efficientnet_lite0")[1]))
    by_name = {n.name: n for n in model.graph.node}
    found = graph.proposal_nodes(model)
    kinds = {by_name[n].op_type for n in found}
    convs = [by_name[n] for n in found if by_name[n].op_type == "Conv"]
    rpn_outputs = {"cls_logits", "bbox_pred"}
    assert convs and all(any(part in n.name for part in rpn_outputs) for n in convs), [n.name for n in convs]
    assert {"TopK", "Exp"} <= kinds and "RoiAlign" not in kinds and "Gemm" not in kinds
    single_stage = onnx.load(str(exported("fcos_efficientnet_lite0")[1]))
    assert graph.proposal_nodes(single_stage) == []
