"""The peer benchmark's model helpers (benchmarks/_peer_models.py): a graph without bcedge metadata
(an Ultralytics YOLO export) is quantized exactly as bcedge's CPU INT8 is; old models come from git."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")
torch = pytest.importorskip("torch")
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests" / "convert")]

import _peer_models
from convert_helpers import CLASSES, SIZE, write_tiny_voc


def _quantized_ops(model) -> Counter:
    """op types fed by a DequantizeLinear (computed in INT8), counted."""
    producers = {t: n for n in model.graph.node for t in n.output}
    return Counter(n.op_type for n in model.graph.node
                   if any(producers.get(t) is not None and producers[t].op_type == "DequantizeLinear" for t in n.input))


def test_peer_quantization_matches_bcedge_cpu_int8(tmp_path):
    from bcedge.convert.calibration import TileSpec, build_calibration_set
    from bcedge.convert.quantize import QuantOptions, quantize
    from bcedge.convert.torch2onnx import torch2onnx
    from bcedge.data import load_dataset
    from bcedge.models import build_detector

    torch.manual_seed(0)
    fp32 = torch2onnx(build_detector("ssdlite_efficientnet_lite0", CLASSES, SIZE, pretrained=False), tmp_path / "m.onnx")
    calib = tmp_path / "calib"
    build_calibration_set(load_dataset(write_tiny_voc(tmp_path / "voc")), calib, TileSpec(SIZE, overlap=8), count=8)
    ours = onnx.load(str(quantize(fp32, calib, tmp_path / "ours.onnx", QuantOptions(target="cpu", method="minmax", limit=4))))
    peer = onnx.load(str(_peer_models.quantize_peer(fp32, calib, tmp_path / "peer.onnx", method="minmax", limit=4)))
    assert _quantized_ops(peer) == _quantized_ops(ours) and sum(_quantized_ops(peer).values()) > 0
    assert Counter(n.op_type for n in peer.graph.node) == Counter(n.op_type for n in ours.graph.node)
    zero_points = {onnx.numpy_helper.to_array(t).dtype for t in peer.graph.initializer if t.name.endswith("zero_point")}
    assert np.dtype(np.uint8) in zero_points      # U8S8: unsigned activations, as the CPU target


def test_git_spec_gives_the_committed_file(tmp_path, monkeypatch):
    monkeypatch.setattr(_peer_models, "CACHE", tmp_path)
    path = _peer_models.model_file("git:HEAD:pyproject.toml")
    assert path.parent.parent == tmp_path and b"[build-system]" in path.read_bytes()
    with pytest.raises(SystemExit, match="not in this repository"):
        _peer_models.model_file("git:HEAD:no/such/file.onnx")
