"""Every zoo architecture builds at an explicit input size, trains (its loss falls), and keeps that size."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bcedge.models import build_detector, load_detector, split_arch, zoo  # noqa: E402

CLASSES = ["RBC", "WBC", "Platelets"]
SIZE = (128, 96)


def _tiny_batch(seed=0):
    """Two synthetic 'smears': bright discs on a pink background, boxes exact."""
    rng = np.random.default_rng(seed)
    images, targets = [], []
    for _ in range(2):
        img = np.full((SIZE[1], SIZE[0], 3), (0.9, 0.75, 0.8), np.float32)
        boxes, labels = [], []
        for label, radius in ((1, 12), (2, 20), (3, 5)):
            cx, cy = rng.uniform(radius + 2, SIZE[0] - radius - 2), rng.uniform(radius + 2, SIZE[1] - radius - 2)
            yy, xx = np.mgrid[: SIZE[1], : SIZE[0]]
            disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2
            img[disc] = (0.8, 0.3, 0.4) if label == 1 else (0.4, 0.2, 0.6)
            boxes.append([cx - radius, cy - radius, cx + radius, cy + radius])
            labels.append(label)
        images.append(torch.from_numpy(img.transpose(2, 0, 1).copy()))
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)})
    return images, targets


def test_zoo_has_every_head_on_every_backbone():
    names = set(zoo())
    for head in ("faster_rcnn", "retinanet", "fcos", "ssdlite"):
        for backbone in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenet_v3_large", "resnet50"):
            assert f"{head}_{backbone}" in names
    assert split_arch("faster_rcnn_efficientnet_lite0") == ("faster_rcnn", "efficientnet_lite0")
    with pytest.raises(ValueError, match="unknown architecture"):
        split_arch("yolo_efficientnet_lite0")


@pytest.mark.parametrize("arch", zoo())
def test_loss_falls_in_a_few_steps(arch):
    torch.manual_seed(0)
    detector = build_detector(arch, CLASSES, SIZE, pretrained=False)
    images, targets = _tiny_batch()
    optimizer = torch.optim.SGD([p for p in detector.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    detector.train()
    losses = []
    for _ in range(8):
        loss = sum(detector(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(detector.parameters(), 10.0)
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.isfinite(losses).all()
    assert np.mean(losses[-2:]) < np.mean(losses[:2]), losses


def test_input_of_another_size_is_refused_not_resized():
    detector = build_detector("fcos_efficientnet_lite0", CLASSES, SIZE, pretrained=False).eval()
    with pytest.raises(ValueError, match="model input is 128x96"):
        detector([torch.rand(3, 200, 200)])


def test_input_size_must_be_multiple_of_32():
    with pytest.raises(ValueError, match="multiple of 32"):
        build_detector("fcos_efficientnet_lite0", CLASSES, (100, 96), pretrained=False)


def test_checkpoint_round_trip_keeps_metadata_and_outputs(tmp_path):
    torch.manual_seed(0)
    detector = build_detector("retinanet_efficientnet_lite0", CLASSES, SIZE, pretrained=False).eval()
    detector.meta.score_thresholds = {"RBC": 0.4}
    path = tmp_path / "model.pt"
    detector.save(path, epoch=3)
    loaded, state = load_detector(path)
    assert state["epoch"] == 3
    assert loaded.meta.class_names == CLASSES and loaded.meta.input_size == SIZE
    assert loaded.meta.score_thresholds == {"RBC": 0.4}
    x = torch.rand(1, 3, SIZE[1], SIZE[0])
    with torch.no_grad():
        a, b = detector.deploy(x), loaded.eval().deploy(x)
    assert torch.allclose(a[0], b[0]) and torch.allclose(a[1], b[1])


def test_anchor_sizes_follow_the_box_statistics():
    from bcedge.models.anchors import anchor_config

    rng = np.random.default_rng(0)
    sides = np.concatenate([rng.normal(40, 4, 100), rng.normal(100, 8, 300), rng.normal(190, 15, 50)])
    boxes = np.stack([np.zeros_like(sides), np.zeros_like(sides), sides, sides], 1)
    config = anchor_config(boxes, levels=5)
    assert 25 < config["sizes"][0] < 40 and 180 < config["sizes"][-1] < 260
    assert config["sizes"] == sorted(config["sizes"])
    assert 1.0 in config["aspect_ratios"]
