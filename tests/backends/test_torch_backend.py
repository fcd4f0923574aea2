"""The torch backend's device and precision checks (no GPU needed: a stand-in torch says what it has)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from bcedge.backends.base import BackendUnavailable
from bcedge.backends.torch import resolve_device


def fake_torch(cuda_version: str | None, devices: int):
    cuda = SimpleNamespace(is_available=lambda: devices > 0, device_count=lambda: devices)
    return SimpleNamespace(__version__="2.x", version=SimpleNamespace(cuda=cuda_version), cuda=cuda)


def test_cuda_without_a_cuda_build_names_the_build():
    with pytest.raises(BackendUnavailable, match="built without CUDA"):
        resolve_device(fake_torch(None, 0), "cuda")


def test_cuda_without_a_gpu_names_the_driver_and_never_falls_back():
    with pytest.raises(BackendUnavailable, match="no usable GPU.*driver"):
        resolve_device(fake_torch("13.0", 0), "cuda:0")


def test_cuda_index_past_the_devices():
    with pytest.raises(BackendUnavailable, match="only 1 CUDA device"):
        resolve_device(fake_torch("13.0", 1), "cuda:1")


def test_auto_picks_what_is_there_and_unknown_devices_are_refused():
    assert resolve_device(fake_torch("13.0", 1), "auto") == "cuda"
    assert resolve_device(fake_torch(None, 0), "auto") == "cpu"
    assert resolve_device(fake_torch("13.0", 1), "cuda:0") == "cuda:0"
    with pytest.raises(ValueError, match="cpu, cuda or cuda:N"):
        resolve_device(fake_torch("13.0", 1), "tensorrt")


def test_unknown_precision_is_refused(tmp_path):
    pytest.importorskip("torch")
    from bcedge.backends import load_backend

    checkpoint = tmp_path / "m.pt"
    checkpoint.write_bytes(b"x")
    with pytest.raises(ValueError, match="fp32, fp16"):
        load_backend(checkpoint, backend="torch", device="cpu", precision="int4")
