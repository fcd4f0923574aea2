"""The backend spec: each Backend class declares its suffixes, devices, precisions, packages and why it cannot run."""
from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

import bcedge.backends as backends
from bcedge.artifact import ModelMeta
from bcedge.backends import backend_class, backend_classes, backend_for, load_backend, suffix_backends
from bcedge.backends.base import Backend, Package


def test_suffix_table_is_derived_from_the_classes():
    assert suffix_backends() == {".onnx": "onnxruntime", ".engine": "tensorrt", ".plan": "tensorrt",
                                 ".pt": "torch", ".pth": "torch"}
    assert backend_for("m.ENGINE") == "tensorrt"
    with pytest.raises(ValueError, match=r"m.tflite: cannot tell the backend from the suffix '.tflite'.*--backend"):
        backend_for("m.tflite")
    with pytest.raises(ValueError, match="unknown backend 'tflite'; known: onnxruntime, tensorrt, torch"):
        backend_class("tflite")


def test_a_backend_named_for_a_file_it_does_not_open_says_which_does(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not read: refused before")
    with pytest.raises(ValueError, match=r"m.onnx: the torch backend opens .pt, .pth files; .onnx files are for the "
                                         r"onnxruntime backend"):
        load_backend(model, backend="torch")


def test_every_backend_declares_its_spec():
    for name, cls in backend_classes().items():
        assert cls.name == name and cls.suffixes and cls.devices and cls.precisions and cls.packages, name
        assert all(s.startswith(".") and s == s.lower() for s in cls.suffixes)
        assert cls.unavailable_reason("nowhere") == f"the {name} backend has no device 'nowhere' (it runs on {', '.join(cls.devices)})"
    assert backend_class("tensorrt").artifact_kind("int8", "cuda") == "engine:int8"
    assert backend_class("torch").artifact_kind("fp16", "cpu") is None


def test_a_missing_package_is_named_with_how_to_get_it(monkeypatch):
    trt = backend_class("tensorrt")
    monkeypatch.setattr(trt, "packages", (Package("no_such_module_bcedge", "pip install it, or JetPack"),))
    assert trt.unavailable_reason("cuda") == "no_such_module_bcedge is not installed (pip install it, or JetPack)"


def test_a_new_backend_is_one_file_and_one_line(tmp_path, monkeypatch):
    (tmp_path / "bcedge_echo_backend.py").write_text(textwrap.dedent('''
        import numpy as np
        from bcedge.artifact import ModelMeta
        from bcedge.backends.base import Backend, register_backend

        @register_backend("echo")
        class EchoBackend(Backend):
            suffixes = (".echo",)
            def _load(self):
                return ModelMeta(arch="a_b", head="a", backbone="b", class_names=["x"], input_size=(8, 8))
            def _infer(self, batch):
                return np.zeros((len(batch), 1, 4), np.float32), np.zeros((len(batch), 1, 1), np.float32)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(backends, "BACKEND_MODULES", backends.BACKEND_MODULES + ("bcedge_echo_backend",))
    monkeypatch.delitem(backends.BACKENDS, "echo", raising=False)
    (tmp_path / "m.echo").write_bytes(b"")
    try:
        assert suffix_backends()[".echo"] == "echo"
        runner = load_backend(tmp_path / "m.echo", device="cpu")
        assert runner.describe() == "echo on cpu (fp32)" and runner.infer(np.zeros((2, 3, 8, 8), np.float32))[0].shape == (2, 1, 4)
    finally:
        backends.BACKENDS.pop("echo", None)
        sys.modules.pop("bcedge_echo_backend", None)


class _Fixed(Backend):
    name = "fixed"

    def _load(self) -> ModelMeta:
        return ModelMeta(arch="a_b", head="a", backbone="b", class_names=["x"], input_size=(96, 64),
                         stride=32, dynamic_input=self.options.get("dynamic", False))

    def _infer(self, batch):
        return np.zeros((len(batch), 1, 4), np.float32), np.zeros((len(batch), 1, 1), np.float32)


def test_dynamic_input_models_take_any_multiple_of_the_stride(tmp_path):
    (tmp_path / "m.x").write_bytes(b"")
    static = _Fixed(tmp_path / "m.x")
    static.infer(np.zeros((1, 3, 64, 96), np.float32))
    with pytest.raises(ValueError, match=r"m.x: expected a batch \(B, 3, 64, 96\), got \(1, 3, 128, 96\)"):
        static.infer(np.zeros((1, 3, 128, 96), np.float32))
    dynamic = _Fixed(tmp_path / "m.x", dynamic=True)
    dynamic.infer(np.zeros((2, 3, 128, 224), np.float32))
    with pytest.raises(ValueError, match="H and W multiples of 32, got"):
        dynamic.infer(np.zeros((1, 3, 100, 96), np.float32))
