"""The prepared GPU check's dry run (CPU + numba's CUDA simulator, smallest sizes) and its pieces."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bcedge.bench.gpu import Record, candidate_boxes, match
from bcedge.detections import Detections

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "export/checkpoints/fcos_lite_efficientnet_lite0_default/checkpoint.pt"
ONNX = ROOT / "bcedge/assets/models/default.onnx"


def test_match_counts_boxes_within_iou_per_class():
    a = Detections(np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32), np.array([0.9, 0.8]), np.array([0, 1]))
    shifted = Detections(a.xyxy + np.float32(0.2), a.scores, a.class_ids)
    assert match(a, shifted)["all_matched"]
    other_class = Detections(a.xyxy, a.scores, np.array([1, 0]))
    assert match(a, other_class)["matched"] == 0
    far = Detections(a.xyxy + np.float32(3), a.scores, a.class_ids)
    assert not match(a, far, iou=0.9)["all_matched"]


def test_candidate_boxes_overlap_like_a_detector():
    xyxy, scores, classes = candidate_boxes(4000, seed=1)
    assert xyxy.shape == (4000, 4) and (xyxy[:, 2:] > xyxy[:, :2]).all()
    from bcedge.runtime.nms import nms

    kept = nms(xyxy, scores, classes, 0.5, backend="numba")
    assert 800 <= len(kept) < 2000  # about one box per cell survives out of four


def test_a_failing_section_keeps_its_error_and_the_rest(tmp_path):
    record = Record(tmp_path, "x", 60, {"mode": "test"})
    with record.section("broken", 5) as (entry, _):
        raise RuntimeError("boom")
    with record.section("fine", 5) as (entry, _):
        entry["value"] = 1
    data = json.loads((tmp_path / "x.json").read_text())
    assert "boom" in data["sections"]["broken"]["error"] and data["sections"]["fine"]["value"] == 1
    assert "boom" in (tmp_path / "x.md").read_text()


@pytest.mark.slow
def test_dry_run_writes_results(tmp_path):
    """The NMS and merge sections always run; the model sections need the committed checkpoint and
    bundled model, and say "model missing" without them."""
    pytest.importorskip("torch")
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_check.py"), "--dry-run", "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "gpu_check_dry-run.json").read_text())
    sections = data["sections"]
    assert [name for name, s in sections.items() if "error" in s] == []
    assert sections["nms"]["all_identical"] is True
    assert {r["backend"] for r in sections["nms"]["rows"]} >= {"cuda", "torch_grid", "torchvision"}
    assert sections["merge"]["device_merge_torch"]["same_boxes"] is True
    assert sections["merge"]["device_merge_torchvision"]["same_count"] is True
    assert set(data["targets"]) and (tmp_path / "gpu_check_dry-run.md").is_file()
    if not (CHECKPOINT.is_file() and ONNX.is_file()):
        assert sections["parity"]["skipped"].startswith("model missing")
        return
    assert sections["parity"]["rows"][0]["same_counts"] is True
    assert sections["throughput"]["rows"][0]["tiles_per_s"] > 0
    assert sections["end_to_end"]["rows"][0]["tiles"] >= 1
