"""The training loop's run-level behaviour on a tiny two-source dataset: a resumable run with an EMA,
scale normalisation recorded in the metadata, the time budget, and the sampler that feeds it."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bcedge.data.annotations import Dataset, ImageAnnotation  # noqa: E402
from bcedge.train.augment import AugmentConfig  # noqa: E402
from bcedge.train.dataset import EpochSampler, sampling_weights  # noqa: E402
from bcedge.train.loop import TrainConfig, train  # noqa: E402


def tiny_sources(tmp_path) -> Dataset:
    """Two 'microscopes': the same discs at 40 px and at 80 px, three images each."""
    import cv2

    records = []
    for group, radius in (("small", 20), ("large", 40)):
        for i in range(3):
            size = 8 * radius
            image = np.full((size, size, 3), 230, np.uint8)
            boxes = []
            for cx, cy in ((2 * radius, 2 * radius), (5 * radius, 2 * radius), (2 * radius, 5 * radius), (5 * radius, 5 * radius)):
                cv2.circle(image, (cx, cy), radius, (180, 60, 90), -1)
                boxes.append([cx - radius, cy - radius, cx + radius, cy + radius])
            path = tmp_path / f"{group}{i}.png"
            cv2.imwrite(str(path), image)
            records.append(ImageAnnotation(path, size, size, np.array(boxes, np.float32), ["RBC"] * 4, group=group))
    return Dataset(records, ["RBC", "WBC", "Platelets"])


def config(**overrides) -> TrainConfig:
    base = dict(arch="fcos_lite_efficientnet_lite0", input_size=(96, 96), epochs=2, batch_size=2, lr=1e-3,
                optimizer="adamw", pretrained=False, ema=0.99, train_bn=True, warmup_iters=1, device="cpu",
                augment=AugmentConfig(target_cell_px=24.0, scale=(0.9, 1.1)))
    base.update(overrides)
    return TrainConfig(**base)


def test_a_resumed_run_continues_and_the_metadata_records_the_working_scale(tmp_path):
    from bcedge.models import load_detector

    data = tiny_sources(tmp_path)
    out = tmp_path / "run"
    last = train(config(epochs=1), data, out, log=lambda *_: None)
    detector, state = load_detector(last)
    assert state["epoch"] == 1 and "train_model" in state and state["ema_updates"] == 3   # 6 images, batches of 2
    scale = detector.meta.pixel_scale
    assert scale["cell_px"] == 24.0 and scale["range_px"] == [21.6, 26.4]
    assert scale["training_data"]["groups"]["small"]["median_px"] == 40.0
    assert scale["training_data"]["groups"]["large"]["median_px"] == 80.0
    # the overlap floor is in model pixels at the working scale: discs of 24 px, not 80
    assert detector.meta.max_object_size == pytest.approx(24.0, abs=1.0)
    train(config(epochs=2), data, out, log=lambda *_: None)
    detector, state = load_detector(out / "last.pt")
    assert state["epoch"] == 2 and state["ema_updates"] == 6
    history = (out / "history.jsonl").read_text().splitlines()
    assert len(history) == 2


def test_the_time_budget_ends_training_early(tmp_path):
    data = tiny_sources(tmp_path)
    train(config(epochs=50, time_budget_s=1e-3, ema=0.0), data, tmp_path / "run", log=lambda *_: None)
    history = (tmp_path / "run" / "history.jsonl").read_text().splitlines()
    assert len(history) == 1          # the first step already used the budget


def test_sampler_gives_each_group_an_equal_share_and_carries_the_epoch(tmp_path):
    data = tiny_sources(tmp_path)
    data.images = data.images + data.images[:3]          # the small group now has twice the images
    weights = sampling_weights(data, rare_classes=False)
    per_group = {g: sum(w for w, r in zip(weights, data.images) if r.group == g) for g in ("small", "large")}
    assert per_group["small"] == pytest.approx(per_group["large"])
    draws = list(EpochSampler(weights, per_epoch=6, start=1, epochs=3, seed=0))
    assert len(draws) == 12 and [e for e, _ in draws] == [1] * 6 + [2] * 6
    assert draws == list(EpochSampler(weights, per_epoch=6, start=1, epochs=3, seed=0))   # reproducible


def test_the_train_command_takes_several_datasets(tmp_path):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "data"))
    from dataset_builders import write_voc, write_yolo

    from bcedge.cli import main

    voc = write_voc(tmp_path / "voc", {"a": [("RBC", 1, 1, 20, 20), ("WBC", 30, 10, 60, 40)]}, size=(64, 64),
                    splits={"train": ["a"]})
    yolo = write_yolo(tmp_path / "yolo", {"train": {"x": ["1 0.5 0.5 0.3 0.3", "0 0.2 0.2 0.2 0.2"]}},
                      names=("WBC", "RBC", "Platelets"), size=(64, 64))
    out = tmp_path / "run"
    code = main(["train", "--data", str(voc), "--data", str(yolo), "--split", "train", "--arch", "fcos_lite_efficientnet_lite0",
                 "--input-size", "64x64", "--no-pretrained", "--out", str(out), "--epochs", "1", "--cell-px", "20",
                 "--max-iters", "1", "--device", "cpu"])
    assert code == 0
    from bcedge.models import load_detector

    detector, _ = load_detector(out / "last.pt")
    assert detector.meta.pixel_scale["cell_px"] == 20.0
    assert detector.meta.train_data["images"] == 2
    assert set(detector.meta.pixel_scale["training_data"]["groups"]) == {"voc/64x64", "yolo/64x64"}
