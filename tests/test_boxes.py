"""The one pairwise IoU (bcedge/boxes.py) that parity, evaluation, validation and the benchmarks share."""
import numpy as np
import pytest

from bcedge.boxes import box_areas, pairwise_intersection, pairwise_iou

BOXES = np.array([[0, 0, 10, 10], [20, 0, 30, 12], [40, 10, 60, 30], [1, 1, 11, 11]], np.float32)


def test_pairwise_iou():
    iou = pairwise_iou(BOXES[:2], BOXES)
    assert iou.shape == (2, 4) and iou.dtype == np.float64
    assert iou[0, 0] == pytest.approx(1.0) and iou[0, 1] == 0.0 and iou[0, 3] == pytest.approx(81 / 119)
    assert pairwise_iou(BOXES[:0], BOXES).shape == (0, 4)
    assert pairwise_iou(BOXES, BOXES[:0]).shape == (4, 0)
    np.testing.assert_allclose(pairwise_iou(BOXES, BOXES), pairwise_iou(BOXES, BOXES).T)


def test_boxes_without_area_overlap_nothing():
    flat = np.array([[5, 5, 5, 5], [8, 2, 4, 9]], np.float32)  # a point; a box with a negative side
    assert box_areas(flat).tolist() == [0.0, 0.0]
    assert np.all(pairwise_iou(flat, flat) == 0) and np.all(pairwise_iou(flat, BOXES) == 0)


def test_intersection_areas():
    assert pairwise_intersection(BOXES[:1], BOXES).tolist() == [[100.0, 0.0, 0.0, 81.0]]
    assert box_areas(BOXES).tolist() == [100.0, 120.0, 400.0, 100.0]
