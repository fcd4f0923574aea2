"""The parity harness on fake runners: what passes, what fails, and why (no torch, no model files)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bcedge.artifact import ModelMeta
from bcedge.parity import TOLERANCES, Tolerance, compare, random_batches, tolerance_for

META = ModelMeta(arch="fcos_x", head="fcos", backbone="x", class_names=["RBC", "WBC"], input_size=(64, 32),
                 default_score_threshold=0.5, nms_iou=0.5)


class Fake:
    """A runner whose raw outputs are fixed arrays, optionally transformed."""

    def __init__(self, boxes, scores, meta=META, change=None, precision="fp32"):
        self.boxes, self.scores, self.change = boxes, scores, change
        self.meta = ModelMeta.from_json(meta.to_json())
        self.meta.precision = precision

    def infer(self, batch):
        boxes = np.repeat(self.boxes[None], len(batch), 0).astype(np.float32)
        scores = np.repeat(self.scores[None], len(batch), 0).astype(np.float32)
        return self.change(boxes, scores) if self.change else (boxes, scores)


BOXES = np.array([[0, 0, 10, 10], [20, 0, 30, 12], [40, 10, 60, 30], [1, 1, 11, 11]], np.float32)
SCORES = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.6], [0.3, 0.1]], np.float32)
BATCHES = [np.zeros((2, 3, 32, 64), np.float32)]


def test_identical_runners_match_exactly():
    report = compare([Fake(BOXES, SCORES), Fake(BOXES, SCORES)], BATCHES)
    (pair,) = report.pairs
    assert report.ok and report.images == 2
    # per image: (0, RBC 0.9), (1, WBC 0.8), (2, RBC 0.7), (2, WBC 0.6); box 3 is below threshold
    assert pair.detections == (8, 8) and pair.matched == 8 and pair.mismatched == 0
    assert pair.box_max_abs == 0 and pair.score_max_abs == 0


def test_small_box_error_passes_and_large_fails():
    nudge = lambda d: Fake(BOXES, SCORES, change=lambda b, s: (b + d, s))  # noqa: E731
    assert compare([Fake(BOXES, SCORES), nudge(0.005)], BATCHES).ok        # under the 0.01 px floor
    report = compare([Fake(BOXES, SCORES), nudge(0.5)], BATCHES)
    pair = report.pairs[0]
    assert not report.ok and not pair.raw_ok
    assert pair.box_outside == 2 * BOXES.size and pair.box_max_abs == pytest.approx(0.5)
    # 0.5 px on 10 px boxes is IoU ~0.9, below 0.99: every detection is unpaired on both sides
    assert not pair.detections_ok and pair.matched == 0 and pair.mismatched == 16


def test_relative_tolerance_scales_with_coordinates():
    far = BOXES + 1000
    report = compare([Fake(far, SCORES), Fake(far, SCORES, change=lambda b, s: (b * 1.0005, s))], BATCHES)
    assert report.pairs[0].box_outside == 0 and report.pairs[0].box_max_rel == pytest.approx(5e-4, rel=0.05)


def test_a_lost_detection_is_a_mismatch_unless_it_sits_on_the_threshold():
    def drop(b, s):
        s = s.copy()
        s[:, 2, 0] = 0.0  # the RBC at 0.7 disappears
        return b, s

    report = compare([Fake(BOXES, SCORES), Fake(BOXES, SCORES, change=drop)], BATCHES, tolerance=Tolerance(score_atol=1.0))
    assert report.pairs[0].mismatched == 2 and not report.ok

    def edge(b, s):
        s = s.copy()
        s[:, 2, 1] = 0.4995  # the WBC at 0.6 -> 0.5005 in the reference below, 0.4995 here: borderline
        return b, s

    ref = SCORES.copy()
    ref[2, 1] = 0.5005
    report = compare([Fake(BOXES, ref), Fake(BOXES, ref, change=edge)], BATCHES, tolerance=Tolerance(score_atol=1.0))
    assert report.pairs[0].borderline == 2 and report.pairs[0].mismatched == 0 and report.ok


def test_score_difference_of_a_matched_pair_counts():
    report = compare([Fake(BOXES, SCORES), Fake(BOXES, SCORES, change=lambda b, s: (b, s * 0.95))], BATCHES)
    pair = report.pairs[0]
    assert pair.score_outside > 0 and pair.mismatched == 8 and not report.ok


def test_shape_and_model_mismatches_are_reported():
    other = ModelMeta.from_json(META.to_json())
    other.class_names = ["RBC", "Platelets"]
    with pytest.raises(ValueError, match="not the same model"):
        compare([Fake(BOXES, SCORES), Fake(BOXES, SCORES, meta=other)], BATCHES)
    with pytest.raises(ValueError, match="at least two"):
        compare([Fake(BOXES, SCORES)], BATCHES)
    report = compare([Fake(BOXES, SCORES), Fake(BOXES[:3], SCORES[:3])], BATCHES)
    assert not report.ok and "shapes differ" in report.pairs[0].problems[0]
    nan = compare([Fake(BOXES, SCORES), Fake(BOXES, SCORES, change=lambda b, s: (b * np.nan, s))], BATCHES)
    assert any("non-finite" in p for p in nan.pairs[0].problems)


def test_tolerance_follows_the_less_precise_runner():
    assert tolerance_for("fp32", "fp32") == TOLERANCES["fp32"]
    assert tolerance_for("fp32", "fp16") == TOLERANCES["fp16"]
    assert tolerance_for("fp16", "int8") == TOLERANCES["int8"]
    report = compare([Fake(BOXES, SCORES), Fake(BOXES, SCORES, change=lambda b, s: (b + 0.5, s), precision="fp16")], BATCHES)
    assert report.ok and report.pairs[0].tolerance == TOLERANCES["fp16"]
    assert "OK" in report.format() and report.to_dict()["pairs"][0]["ok"] is True


def test_random_batches():  # (the IoU it uses: tests/test_boxes.py)
    batches = random_batches(META, images=5, batch_size=2, seed=3)
    assert [b.shape for b in batches] == [(2, 3, 32, 64), (2, 3, 32, 64), (1, 3, 32, 64)]
    assert all(b.dtype == np.float32 and 0 <= b.min() and b.max() <= 1 for b in batches)
    again = random_batches(META, images=5, batch_size=2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert batches[0].std() > 0.05  # blobs, not a flat field


def test_parity_and_conversion_modules_import_without_torch():
    code = textwrap.dedent("""
        import sys
        class _NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "torchvision"):
                    raise ImportError("torch is blocked")
        sys.meta_path.insert(0, _NoTorch())
        import bcedge.parity, bcedge.backends.tensorrt
        import bcedge.convert.graph, bcedge.convert.onnx2fp16, bcedge.convert.quantize
        import bcedge.convert.calibration, bcedge.convert.onnx2engine
        assert "torch" not in sys.modules
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_nms_tie_is_borderline_but_a_moved_box_is_not():
    boxes = np.array([[0, 0, 20, 20], [1, 0, 21, 20], [40, 40, 50, 50]], np.float32)   # 0 and 1: IoU 0.9
    scores = np.array([[0.80000, 0.0], [0.79995, 0.0], [0.9, 0.0]], np.float32)

    def swap(b, s):
        s = s.copy()
        s[:, 0, 0], s[:, 1, 0] = 0.79995, 0.80000     # NMS now keeps box 1 instead of box 0
        return b, s

    report = compare([Fake(boxes, scores), Fake(boxes, scores, change=swap)], BATCHES, tolerance=Tolerance(score_atol=1e-3))
    pair = report.pairs[0]
    assert report.ok and pair.matched == 2 and pair.borderline == 4 and pair.mismatched == 0

    def move(b, s):
        b = b.copy()
        b[:, 0] += np.array([1, 0, 1, 0], np.float32)   # box 0 moves onto box 1's place: raw disagrees
        return b, s

    moved = compare([Fake(boxes, scores), Fake(boxes, scores, change=move)], BATCHES, tolerance=Tolerance(box_atol=2.0))
    # the raw boxes pass the loose 2 px tolerance, but this side can no longer produce the reference box
    assert moved.pairs[0].raw_ok and moved.pairs[0].mismatched == 2 and not moved.ok


def test_rows_in_another_order_are_found_but_a_changed_row_is_not():
    def swap(b, s):
        return b[:, [1, 0, 2, 3]], s[:, [1, 0, 2, 3]]

    report = compare([Fake(BOXES, SCORES), Fake(BOXES, SCORES, change=swap)], BATCHES)
    pair = report.pairs[0]
    assert report.ok and pair.reordered == 4 and pair.box_outside == 0 and pair.matched == 8

    def swap_and_move(b, s):
        b, s = swap(b, s)
        b = b.copy()
        b[:, 0, 0] += 3.0
        return b, s

    moved = compare([Fake(BOXES, SCORES), Fake(BOXES, SCORES, change=swap_and_move)], BATCHES)
    assert moved.pairs[0].reordered == 2 and moved.pairs[0].box_outside > 0 and not moved.ok
    assert "rows matched at another position" in moved.format()
