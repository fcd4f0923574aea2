"""The torch backend's device-side decoding gives what the runtime's host decoding gives."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bcedge.backends import load_backend, preprocess  # noqa: E402
from bcedge.models import build_detector  # noqa: E402
from bcedge.runtime.decode import PRE_NMS_TOPK, decode_batch  # noqa: E402


def test_device_decode_matches_host_decode(tmp_path):
    torch.manual_seed(0)
    detector = build_detector("fcos_lite_efficientnet_lite0", ["RBC", "WBC", "Platelets"], (96, 64), pretrained=False)
    head = detector.model.head
    torch.nn.init.normal_(head.classification_head.cls_logits.weight, std=0.5)   # spread scores (untrained)
    torch.nn.init.constant_(head.regression_head.bbox_reg.bias, 1.0)
    detector.save(tmp_path / "m.pt")
    backend = load_backend(tmp_path / "m.pt", device="cpu")
    tiles = (np.random.default_rng(0).random((3, 64, 96, 3)) * 255).astype(np.uint8)
    boxes, scores = backend.infer(preprocess(tiles))
    floor = float(np.quantile(scores, 0.99))   # an untrained model's scores are nearly flat: keep its top 1%
    on_device = backend.infer_detections(tiles, np.full(3, floor, np.float32), 0.5, 100, PRE_NMS_TOPK)
    meta = backend.meta
    meta.score_thresholds = {n: floor for n in meta.class_names}
    on_host = decode_batch(boxes, scores, meta, nms_iou=0.5)
    assert sum(len(d) for d in on_host) > 0
    for a, b in zip(on_device, on_host):   # the same set of boxes (untrained scores tie, so order may not)
        rows = lambda d: np.round(np.column_stack([d.class_ids, d.xyxy, d.scores]), 3)  # noqa: E731
        np.testing.assert_allclose(np.unique(rows(a), axis=0), np.unique(rows(b), axis=0), atol=2e-3)


def test_counter_counts_alike_with_either_decode(tmp_path):
    import glob

    import cv2

    from bcedge.runtime.counter import Counter

    checkpoint = sorted(glob.glob(str(__import__("pathlib").Path(__file__).parents[2] /
                                      "export/checkpoints/fcos_lite_efficientnet_lite0_default/checkpoint.pt")))
    if not checkpoint:
        pytest.skip("the default model's checkpoint is not in this checkout")
    sample = sorted(glob.glob(str(__import__("pathlib").Path(__file__).parents[2] / "bcedge/assets/sample_bccd/JPEGImages/*.jpg")))[0]
    image = cv2.cvtColor(cv2.imread(sample), cv2.COLOR_BGR2RGB)
    backend = load_backend(checkpoint[0], device="cpu")
    on_device = Counter(backend, device_decode=True).count(image)
    on_host = Counter(backend).count(image)
    assert on_device.total > 10 and on_device.counts == on_host.counts
    # several tiles: detections stay on the device and are merged there (runtime.device_merge)
    merged_on_device = Counter(backend, device_decode=True, tile=(192, 192), cell_size=100).count(image)
    merged_on_host = Counter(backend, tile=(192, 192), cell_size=100).count(image)
    assert merged_on_device.tiles >= 4 and merged_on_device.counts == merged_on_host.counts
    rows = lambda r: np.sort(np.column_stack([r.detections.class_ids, r.detections.xyxy]), axis=0)  # noqa: E731
    np.testing.assert_allclose(rows(merged_on_device), rows(merged_on_host), atol=0.05)


def test_uint8_tiles_converted_on_the_device_give_what_host_conversion_gives(tmp_path):
    torch.manual_seed(0)
    detector = build_detector("fcos_lite_efficientnet_lite0", ["RBC", "WBC", "Platelets"], (96, 64), pretrained=False)
    detector.save(tmp_path / "m.pt")
    backend = load_backend(tmp_path / "m.pt", device="cpu")
    tiles = (np.random.default_rng(1).random((2, 64, 96, 3)) * 255).astype(np.uint8)
    on_host = backend.infer(preprocess(tiles))
    on_device = backend.infer_tiles(tiles)
    for a, b in zip(on_device, on_host):   # the same scaling (x * float32(1/255)), so the same numbers
        np.testing.assert_array_equal(a, b)
