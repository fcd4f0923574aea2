"""bcedge.artifact: metadata in every artifact kind (.onnx, .pt, .engine) and the engine file layout."""
from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from bcedge.artifact import (ENGINE_MAGIC, ArtifactError, ModelMeta, artifact_kind, pack_engine, read_engine,
                             read_engine_header, read_engine_meta, read_meta, write_engine, write_meta, write_onnx_meta)

META = ModelMeta(arch="fcos_efficientnet_lite0", head="fcos", backbone="efficientnet_lite0",
                 class_names=["RBC", "WBC", "Platelets"], input_size=(640, 480), precision="fp16")
HEADER = {"meta": asdict(META), "tensorrt": "10.3.0", "precision": "fp16", "batch": [1, 4, 8],
          "device": {"name": "Orin", "compute_capability": "8.7"}}


def _tiny_onnx(path, meta=META):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["boxes"])], "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 3, 4, 4])])
    model = helper.make_model(graph)
    write_onnx_meta(model, meta)
    onnx.save(model, str(path))
    return path


def test_engine_file_round_trip(tmp_path):
    path = write_engine(tmp_path / "m.engine", HEADER, b"\x00serialized-engine\xff")
    assert path.read_bytes().startswith(ENGINE_MAGIC)
    header, blob = read_engine(path)
    assert header == json.loads(json.dumps(HEADER)) and blob == b"\x00serialized-engine\xff"
    assert read_engine_header(path)["batch"] == [1, 4, 8]
    meta = read_engine_meta(path)
    assert meta.class_names == META.class_names and meta.input_size == (640, 480) and meta.precision == "fp16"
    assert [p.name for p in tmp_path.iterdir()] == ["m.engine"]          # no temporary file left behind


@pytest.mark.parametrize("content, message", [
    (b"\x12\x34 plain TensorRT plan", "not a bcedge engine"),
    (pack_engine(HEADER, b"")[:30], "truncated engine header"),
    (pack_engine(HEADER, b""), "no engine"),
    (ENGINE_MAGIC + (99).to_bytes(4, "little") + (2).to_bytes(4, "little") + b"{}", "newer than this bcedge"),
    (ENGINE_MAGIC + (1).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"{x}", "not valid JSON"),
])
def test_bad_engine_files_are_named(tmp_path, content, message):
    path = tmp_path / "bad.engine"
    path.write_bytes(content)
    with pytest.raises(ArtifactError, match=message) as err:
        read_engine(path)
    assert "bad.engine" in str(err.value)
    with pytest.raises(ArtifactError, match="no such engine file"):
        read_engine(tmp_path / "missing.engine")


def test_every_kind_reads_and_writes_its_metadata(tmp_path):
    tuned = ModelMeta(**{**asdict(META), "score_thresholds": {"RBC": 0.42}})
    onnx_path = _tiny_onnx(tmp_path / "m.onnx")
    assert read_meta(onnx_path).class_names == META.class_names
    assert read_meta(write_meta(onnx_path, tuned, tmp_path / "tuned.onnx")).score_thresholds == {"RBC": 0.42}
    assert read_meta(onnx_path).score_thresholds == {}          # the source is left as it was

    engine = write_engine(tmp_path / "m.engine", HEADER, b"engine-bytes")
    out = write_meta(engine, tuned, tmp_path / "tuned.engine")
    header, blob = read_engine(out)
    assert blob == b"engine-bytes" and header["tensorrt"] == "10.3.0"   # only the metadata changed
    assert read_meta(out).score_thresholds == {"RBC": 0.42}
    assert artifact_kind("m.plan").name == "engine" and artifact_kind("M.ONNX").name == "onnx"


def test_checkpoint_metadata(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "m.pt"
    torch.save({"bcedge_meta": META.to_json(), "model": {"w": torch.zeros(2)}}, path)
    tuned = ModelMeta(**{**asdict(META), "nms_iou": 0.6})
    out = write_meta(path, tuned, tmp_path / "tuned.pt")
    assert read_meta(out).nms_iou == 0.6 and read_meta(path).nms_iou == 0.5
    assert np.array_equal(torch.load(out, weights_only=True)["model"]["w"].numpy(), np.zeros(2))
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(ArtifactError, match="foreign.pt: checkpoint has no bcedge metadata"):
        read_meta(tmp_path / "foreign.pt")


def test_unknown_or_mismatched_kinds_are_refused(tmp_path):
    with pytest.raises(ArtifactError, match="model.tflite: not a model artifact"):
        read_meta(tmp_path / "model.tflite")
    onnx_path = _tiny_onnx(tmp_path / "m.onnx")
    with pytest.raises(ArtifactError, match="same kind of artifact as m.onnx"):
        write_meta(onnx_path, META, tmp_path / "m.engine")
