"""The export-road subcommands: export (with its parity check), parity, fp16, calib build/verify, errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bcedge.artifact import read_onnx_meta
from bcedge.cli import main

from convert_helpers import SIZE


def test_export_then_parity_and_fp16(exported, tmp_path, capsys):
    pytest.importorskip("torch")
    ckpt, _ = exported("ssdlite_efficientnet_lite0")
    out = tmp_path / "cli.onnx"
    assert main(["export", str(ckpt), "--out", str(out), "--fp16"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "OK" in text and "FAIL" not in text
    assert read_onnx_meta(out).precision == "fp32" and read_onnx_meta(tmp_path / "cli.fp16.onnx").precision == "fp16"
    report = tmp_path / "parity.json"
    assert main(["parity", str(ckpt), f"{out}@onnxruntime:cpu", "--images", "3", "--batch-size", "2",
                 "--score-floor", "0.2", "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["ok"] and data["images"] == 3 and data["pairs"][0]["box_outside"] == 0
    assert main(["fp16", str(out), "--out", str(tmp_path / "again.fp16.onnx")]) == 0


def test_parity_fails_loudly_on_a_different_model(exported, capsys):
    _, a = exported("fcos_efficientnet_lite0")
    _, b = exported("ssdlite_efficientnet_lite0")
    assert main(["parity", str(a), str(b)]) == 1                 # same classes and size, other graph
    assert "shapes differ" in capsys.readouterr().out
    assert main(["parity", str(a)]) == 2
    assert main(["parity", str(a), "/no/such.onnx"]) == 2
    assert "/no/such.onnx: no such model file" in capsys.readouterr().err


def test_calib_build_and_verify(tiny_voc, tmp_path, capsys):
    out = tmp_path / "calib"
    assert main(["calib", "build", "--data", str(tiny_voc), "--out", str(out), "--count", "5",
                 "--input-size", f"{SIZE[0]}x{SIZE[1]}"]) == 0
    assert "5 tiles 64x64" in capsys.readouterr().out
    assert main(["calib", "verify", str(out)]) == 0
    tiles = np.load(out / "tiles.npy")
    tiles[0, 0, 0, 0] ^= 0xFF
    np.save(out / "tiles.npy", tiles)
    assert main(["calib", "verify", str(out)]) == 2
    assert "sha256" in capsys.readouterr().err
    assert main(["calib", "build", "--data", str(tmp_path / "nothing"), "--out", str(out), "--input-size", "64x64"]) == 2
