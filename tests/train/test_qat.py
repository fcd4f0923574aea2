"""Quantization-aware fine-tuning: convolutions round to the TensorRT target's INT8 grid in the forward
pass only; the checkpoint stays a plain model, and a fine-tune starts from a trained checkpoint."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from bcedge.train.qat import fake_quantize_convs, remove_fake_quantization  # noqa: E402
from tests.train.test_loop import config, tiny_sources  # noqa: E402


def small_net():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU6(), torch.nn.Conv2d(8, 4, 1))
    net.add_module("cls_logits", torch.nn.Conv2d(4, 2, 1))   # a head's output layer: stays float
    return net


def test_convolutions_see_int8_rounding_and_the_state_dict_stays_plain():
    net, x = small_net(), torch.rand(2, 3, 16, 16)
    exact = net(x)
    keys = list(net.state_dict())
    assert fake_quantize_convs(net) == 2                       # not the output layer
    rounded = net(x)
    assert not torch.equal(rounded, exact)                      # INT8 rounding changes the output ...
    assert torch.allclose(rounded, exact, atol=0.05)            # ... a little
    assert list(net.state_dict()) == keys
    rounded.sum().backward()                                    # straight-through gradients reach the weights
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0
    remove_fake_quantization(net)
    assert torch.equal(net(x), exact)


def test_a_quantization_aware_fine_tune_starts_from_a_checkpoint_and_saves_a_plain_one(tmp_path):
    from bcedge.models import load_detector
    from bcedge.train.loop import train

    data = tiny_sources(tmp_path)
    first = train(config(epochs=1, ema=0.0), data, tmp_path / "float", log=lambda *_: None)
    messages = []
    tuned = train(config(epochs=1, ema=0.0, init_from=str(first), qat=True, lr=1e-5), data, tmp_path / "qat",
                  log=messages.append)
    assert any("starting from the weights" in m for m in messages) and any("quantization-aware" in m for m in messages)
    start, _ = load_detector(first)
    detector, _ = load_detector(tuned)
    assert detector.meta.recipe["qat"] is True
    moved = [k for k, v in detector.model.state_dict().items()
             if v.dtype.is_floating_point and not torch.allclose(v, start.model.state_dict()[k], atol=1e-3)]
    assert len(moved) < len(detector.model.state_dict()) // 2    # a small step from the start, not a fresh model


def test_init_from_refuses_a_model_for_other_classes(tmp_path):
    from bcedge.data.annotations import Dataset
    from bcedge.train.loop import train

    data = tiny_sources(tmp_path)
    first = train(config(epochs=1, ema=0.0), data, tmp_path / "float", log=lambda *_: None)
    other = Dataset(data.images, ["RBC", "WBC"])
    with pytest.raises(ValueError, match="init-from"):
        train(config(epochs=1, ema=0.0, init_from=str(first)), other, tmp_path / "other", log=lambda *_: None)
