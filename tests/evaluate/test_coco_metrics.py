"""The COCO evaluator against a case whose AP was computed by hand; count error and threshold tuning."""
import numpy as np
import pytest

pytest.importorskip("pycocotools")

from bcedge.data.annotations import Dataset, ImageAnnotation  # noqa: E402
from bcedge.detections import Detections  # noqa: E402
from bcedge.evaluate.coco_metrics import coco_metrics  # noqa: E402
from bcedge.evaluate.operating import match_scores, operating_point, tune_thresholds  # noqa: E402

CLASSES = ["RBC", "WBC"]


def _one_image(boxes, labels):
    return Dataset([ImageAnnotation("a.png", 200, 200, np.array(boxes, np.float32), labels)], CLASSES)


def test_ap_matches_the_hand_computed_value():
    # Two RBCs. Detections by score: hit (0.9), false positive (0.8), hit (0.7).
    # Precision/recall: (1, 0.5), (0.5, 0.5), (2/3, 1). COCO's 101-point interpolated precision is 1.0 for
    # recall 0..0.50 (51 points) and 2/3 for 0.51..1.00 (50 points): AP = (51 + 50 * 2/3) / 101 = 0.83498.
    data = _one_image([[10, 10, 50, 50], [100, 100, 140, 140]], ["RBC", "RBC"])
    dets = Detections([[10, 10, 50, 50], [150, 10, 190, 50], [100, 100, 140, 140]], [0.9, 0.8, 0.7], [0, 0, 0])
    metrics = coco_metrics(data, [dets], CLASSES)
    expected = (51 + 50 * 2 / 3) / 101
    assert metrics["per_class"]["RBC"]["AP50"] == pytest.approx(expected, abs=1e-4)
    assert metrics["per_class"]["RBC"]["AP"] == pytest.approx(expected, abs=1e-4)  # exact boxes: all IoUs
    assert metrics["per_class"]["WBC"]["AP"] is None  # no ground truth: undefined, not zero
    assert metrics["mAP50"] == pytest.approx(expected, abs=1e-4)


def test_a_shifted_box_fails_strict_iou_but_passes_at_05():
    data = _one_image([[0, 0, 100, 100]], ["WBC"])
    dets = Detections([[20, 0, 120, 100]], [0.9], [1])  # IoU = 80 / 120 = 0.667
    metrics = coco_metrics(data, [dets], CLASSES)
    assert metrics["per_class"]["WBC"]["AP50"] == pytest.approx(1.0)
    assert metrics["mAP75"] == pytest.approx(0.0)


def test_model_for_other_classes_is_refused():
    data = _one_image([[0, 0, 10, 10]], ["ring"])
    with pytest.raises(ValueError, match="ring"):
        coco_metrics(data, [Detections.empty()], CLASSES)


def test_count_error_and_tuned_threshold():
    data = _one_image([[10, 10, 50, 50], [100, 100, 140, 140]], ["RBC", "RBC"])
    dets = Detections([[10, 10, 50, 50], [100, 100, 140, 140], [150, 10, 190, 50]], [0.9, 0.8, 0.3], [0, 0, 0])
    thresholds = tune_thresholds(match_scores(data, [dets], CLASSES))
    assert thresholds["RBC"] == pytest.approx(0.8)  # keeps both hits, drops the 0.3 false positive
    at_tuned = operating_point(data, [dets], CLASSES, thresholds)["RBC"]
    assert at_tuned["count_mae"] == 0 and at_tuned["precision"] == 1.0 and at_tuned["recall"] == 1.0
    at_low = operating_point(data, [dets], CLASSES, {"RBC": 0.1})["RBC"]
    assert at_low["count_mae"] == 1 and at_low["count_bias"] == 1


def test_a_tuned_threshold_keeps_the_detection_it_was_chosen_at():
    """Stored to 4 decimals, rounded down: 0.62449 must not become 0.6245, which would drop that very box."""
    data = _one_image([[10, 10, 50, 50]], ["RBC"])
    dets = Detections([[10, 10, 50, 50], [150, 10, 190, 50]], [0.62449, 0.3], [0, 0])
    thresholds = tune_thresholds(match_scores(data, [dets], CLASSES))
    assert thresholds["RBC"] == 0.6244
    assert operating_point(data, [dets], CLASSES, thresholds)["RBC"]["recall"] == 1.0
