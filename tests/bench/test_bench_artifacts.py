"""Artifact building: failures become cell statuses, prerequisites propagate, the cache follows the checkpoint."""
from __future__ import annotations

import json
import os

from bcedge.bench import artifacts
from bcedge.bench.artifacts import BuildContext, prepare


def fake_builders(monkeypatch, fail: set[str] = frozenset(), calls: list | None = None):
    calls = calls if calls is not None else []

    def builder(kind):
        def build(s, ctx):
            calls.append(kind)
            if kind in fail:
                raise RuntimeError(f"cannot build {kind}\nmore detail")
            path = s.folder / artifacts.FILE_NAMES[kind]
            path.write_text(kind)
            return path
        return build

    table = {kind: (needs, builder(kind)) for kind, (needs, _) in artifacts.BUILDERS.items()}
    monkeypatch.setattr(artifacts, "BUILDERS", table)
    return calls


def test_failed_export_propagates_to_everything_built_from_it(monkeypatch, tmp_path):
    fake_builders(monkeypatch, fail={"onnx:fp32"})
    s = prepare("faster_rcnn_efficientnet_lite0", (640, 480), tmp_path, {"pt", "onnx:fp16", "onnx:int8-cpu"},
                log=lambda m: None)
    assert s.status("pt") is None and s.two_stage
    assert s.status("onnx:fp32") == "export failed: RuntimeError: cannot build onnx:fp32"
    assert s.status("onnx:fp16") == s.status("onnx:int8-cpu") == s.status("onnx:fp32")
    assert "more detail" in (s.folder / "model.onnx.error.txt").read_text()


def test_built_files_are_reused_until_the_checkpoint_changes(monkeypatch, tmp_path):
    calls = fake_builders(monkeypatch)
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_text("v1")
    kinds = {"onnx:fp32"}
    prepare("fcos_efficientnet_lite0", (64, 64), tmp_path / "work", kinds, checkpoint, log=lambda m: None)
    assert calls == ["pt", "onnx:fp32"]
    again = prepare("fcos_efficientnet_lite0", (64, 64), tmp_path / "work", kinds, checkpoint, log=lambda m: None)
    assert calls == ["pt", "onnx:fp32"] and again.trained and set(again.files) == {"onnx:fp32"}
    checkpoint.write_text("v2, retrained")
    os.utime(checkpoint, (1e9, 1e9))
    prepare("fcos_efficientnet_lite0", (64, 64), tmp_path / "work", kinds, checkpoint, log=lambda m: None)
    assert calls == ["pt", "onnx:fp32"] * 2
    assert json.loads((tmp_path / "work" / "fcos_efficientnet_lite0_64x64" / "source.json").read_text())["size"] == 13


def test_prebuilt_artifacts_need_no_build_road(monkeypatch, tmp_path):
    calls = fake_builders(monkeypatch, fail={"pt"})             # e.g. a Jetson without torch
    first = prepare("ssdlite_efficientnet_lite0", (64, 64), tmp_path, {"pt"}, log=lambda m: None)
    assert first.status("pt").startswith("export failed")
    (first.folder / "model.fp16.onnx").write_text("copied from the build machine")
    s = prepare("ssdlite_efficientnet_lite0", (64, 64), tmp_path, {"onnx:fp16"}, log=lambda m: None)
    assert s.status("onnx:fp16") is None and calls == ["pt"]


def test_unknown_architecture_fails_every_kind(tmp_path):
    s = prepare("yolo_nano", (64, 64), tmp_path, {"pt", "onnx:fp32"}, log=lambda m: None)
    assert s.status("pt").startswith("export failed: ValueError: unknown architecture")


def test_int8_without_calibration_names_the_reason(tmp_path):
    s = artifacts.ArtifactSet("fcos_efficientnet_lite0", (64, 64), tmp_path, files={"onnx:fp32": tmp_path / "m.onnx"})
    build = artifacts.BUILDERS["onnx:int8"][1]
    try:
        build(s, BuildContext(calib=None, calib_error="no calibration set for 64x64 and no dataset"))
    except FileNotFoundError as exc:
        assert "no calibration set for 64x64" in str(exc)
    else:
        raise AssertionError("expected FileNotFoundError")
