"""Training the scale-guess network: emulated views whose target is the size the cells have in them, and an
export that OpenCV runs as torch does."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bcedge.models.scale_prior import ScalePriorNet  # noqa: E402
from bcedge.runtime.scale_prior import ScalePrior, thumbnail, to_blob  # noqa: E402
from bcedge.runtime.sources import ArraySource  # noqa: E402
from bcedge.train.augment import AugmentConfig  # noqa: E402
from bcedge.train.scale_prior import PriorConfig, emulated_view, export_prior  # noqa: E402


def disks(diameter: int = 60, size=(640, 480)) -> np.ndarray:
    image = np.full((size[1], size[0], 3), 230, np.uint8)
    step = int(diameter * 1.7)
    for cy in range(step // 2, size[1], step):
        for cx in range(step // 2, size[0], step):
            cv2.circle(image, (cx, cy), diameter // 2, (60, 60, 60), -1)
    return image


def whole_disk_diameters(thumb: np.ndarray) -> np.ndarray:
    dark = (thumb[..., 0] < 145).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(dark)
    side = thumb.shape[0]
    inside = [(w + h) / 2 for x, y, w, h, _ in stats[1:] if x > 0 and y > 0 and x + w < side and y + h < side]
    return np.array(inside)


@pytest.mark.parametrize("factor, mirror", [(0.5, 0.0), (0.5, 1.0), (1.0, 0.0), (2.0, 0.0), (2.0, 1.0), (4.0, 0.0)])
def test_the_target_is_the_cells_size_in_the_view(factor, mirror):
    plain = AugmentConfig(flip=0, rot90=0, hue=0, saturation=0, brightness=0, contrast=0, channel_gain=0)
    cfg = PriorConfig(mirror=mirror, noise=0.0, blur=0.0, colour=plain)
    thumb, target = emulated_view(disks(60), 60.0, np.random.default_rng(1), cfg, factor=factor)
    measured = whole_disk_diameters(thumb)
    assert len(measured) >= 1
    assert float(np.median(measured)) == pytest.approx(math.exp(target), rel=0.15)


def test_drawn_magnifications_keep_cells_and_images_in_range():
    cfg = PriorConfig()
    rng = np.random.default_rng(0)
    image = disks(60)
    sizes = np.exp([emulated_view(image, 60.0, rng, cfg)[1] for _ in range(100)])
    # thumbnail cells from a large frame's small ones (mirrored out) to a few cells filling the view
    assert sizes.min() < 15 and sizes.max() > 80 and sizes.max() < 700


def test_the_export_runs_in_opencv_as_in_torch(tmp_path):
    torch.manual_seed(0)
    net = ScalePriorNet().eval()
    for module in net.modules():   # trained-looking BatchNorm statistics, so folding them is tested
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    torch.nn.init.normal_(net.head.weight, std=0.1)
    path = export_prior(net, tmp_path / "prior.onnx")
    image = disks(40)
    prior = ScalePrior(path)
    thumb, per_px = thumbnail(image[:480, 80:560])
    with torch.no_grad():
        expected = math.exp(float(net(torch.from_numpy(to_blob(thumb[None]))))) / per_px
    assert prior.cell_px(ArraySource(image)) == pytest.approx(expected, rel=1e-4)


def test_a_cut_off_run_resumed_ends_with_the_weights_of_an_uncut_one(tmp_path, monkeypatch):
    from bcedge.catalogue import ASSETS
    from bcedge.data import load_dataset
    from bcedge.train import scale_prior as training

    data = load_dataset(ASSETS / "sample_bccd")
    cfg = PriorConfig(steps=4, batch_size=2, save_every=2)
    whole = training.train_prior(data, cfg, tmp_path / "whole", log=lambda _: None)

    batch, calls = training.ViewSampler.batch, []

    def cut_at_the_third_step(self, rng, size):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt   # the session ends after the step-2 checkpoint
        return batch(self, rng, size)

    monkeypatch.setattr(training.ViewSampler, "batch", cut_at_the_third_step)
    with pytest.raises(KeyboardInterrupt):
        training.train_prior(data, cfg, tmp_path / "cut", log=lambda _: None)
    monkeypatch.setattr(training.ViewSampler, "batch", batch)
    resumed = training.train_prior(data, cfg, tmp_path / "cut", log=lambda _: None, resume=True)
    for name, value in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, msg=name)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["step"] == 4
