"""The matrix end to end on a tiny model: artifacts, one process per cell, statuses, accuracy, files."""
from __future__ import annotations

import json

import pytest

from bench_results import write_tiny_voc
from bcedge.bench.matrix import get_profile
from bcedge.bench.runner import RunOptions, existing_checkpoints, run_matrix, with_overrides

ARCH = "fcos_efficientnet_lite0"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from bcedge.convert.calibration import TileSpec, build_calibration_set
    from bcedge.data import load_dataset
    from bcedge.models import build_detector

    root = tmp_path_factory.mktemp("bench")
    data = write_tiny_voc(root / "voc")
    calib = root / "calib"
    build_calibration_set(load_dataset(data, "train"), calib, TileSpec((64, 64)), count=2)
    torch.manual_seed(0)
    checkpoint = root / "trained.pt"
    detector = build_detector(ARCH, ["RBC", "WBC", "Platelets"], (64, 64), pretrained=False)
    detector.meta.max_object_size = 30      # accuracy is counted as `bcedge count` counts: its overlap must fit a tile
    detector.save(checkpoint)
    profile = with_overrides(get_profile("quick"), archs=[ARCH, "yolo_nano"], tiles=[(64, 64)], batches=[1, 2],
                             precisions=["fp32", "int8"], runners=["onnxruntime:cpu", "tensorrt:cuda"],
                             smear=(160, 128), smear_overlap=16, min_iterations=2)
    options = RunOptions(out=root / "results", work=root / "work", data=data, calib_dirs=(calib,), name="tiny",
                         checkpoints=existing_checkpoints({ARCH: checkpoint, "faster_rcnn_efficientnet_lite0": root / "no.pt"}))
    lines: list[str] = []
    results = run_matrix(profile, options, log=lines.append)
    return results, root, lines


def _cell(results, key):
    return next(c for c in results["cells"] if c["key"] == key)


def test_measured_cells_have_every_measurement(tiny_run):
    results, root, _ = tiny_run
    cell = _cell(results, f"{ARCH}/onnxruntime:cpu/fp32/b2/64x64")
    assert cell["status"] == "ok", cell
    assert cell["latency_per_tile"]["n"] >= 2 and cell["latency_per_batch"]["mean_ms"] > 0
    assert cell["latency_per_tile"]["p50_ms"] == pytest.approx(cell["latency_per_batch"]["p50_ms"] / 2, rel=1e-3)
    assert cell["throughput"]["megapixels_per_s"] == pytest.approx(cell["throughput"]["tiles_per_s"] * 64 * 64 / 1e6, rel=1e-2)
    assert cell["smear"]["size"] == [160, 128] and cell["smear"]["tiles"] > 1 and cell["smear"]["overlap"] == 16
    memory = cell["memory"]
    assert 0 < memory["host_baseline_mb"] < memory["host_peak_infer_mb"] <= memory["host_peak_mb"] < 4000
    assert cell["size_mb"] > 1 and cell["trained"] and not cell["two_stage"]


def test_accuracy_is_measured_once_and_shared_across_batches(tiny_run):
    results, _, _ = tiny_run
    first = _cell(results, f"{ARCH}/onnxruntime:cpu/fp32/b1/64x64")["accuracy"]
    second = _cell(results, f"{ARCH}/onnxruntime:cpu/fp32/b2/64x64")["accuracy"]
    assert first["status"] == "ok" and first["images"] == 2 and 0 <= first["mAP50"] <= 1
    assert set(first["count_mae"]) == {"RBC", "WBC", "Platelets"}
    assert second["from_batch"] == 1 and second["mAP50"] == first["mAP50"]
    int8 = _cell(results, f"{ARCH}/onnxruntime:cpu/int8/b1/64x64")
    assert int8["status"] == "ok" and int8["artifact"] == "model.int8-cpu.onnx" and int8["accuracy"]["status"] == "ok"


def test_cells_that_cannot_run_say_why(tiny_run):
    results, _, _ = tiny_run
    trt = _cell(results, f"{ARCH}/tensorrt:cuda/fp32/b1/64x64")["status"]
    assert trt.startswith("unsupported here: ")
    unknown = _cell(results, "yolo_nano/onnxruntime:cpu/fp32/b1/64x64")["status"]
    assert unknown.startswith("export failed: ValueError: unknown architecture 'yolo_nano'")
    assert len(results["cells"]) == 2 * 2 * 2 * 2


def test_files_are_written_and_rerendered(tiny_run):
    results, root, lines = tiny_run
    files = results["files"]
    saved = json.loads((root / "results" / "tiny.json").read_text())
    assert saved["files"] == files and saved["machine"]["logical_cpus"] >= 1 and saved["wall_s"] > 0
    assert "| fcos_efficientnet_lite0 | single-stage | ONNX Runtime CPU | int8 |" in (root / "results" / "tiny.md").read_text()
    assert (root / "results" / "tiny.png").stat().st_size > 10_000
    assert any(line.startswith("[16/16]") for line in lines)


def test_a_crashing_cell_is_a_failed_status_not_a_crashed_matrix(tmp_path):
    from bcedge.bench.runner import _run_process

    import numpy as np

    np.save(tmp_path / "smear.npy", np.zeros((64, 64, 3), np.uint8))
    spec = {"artifact": str(tmp_path / "missing.onnx"), "backend": "onnxruntime", "device": "cpu", "tile": [64, 64],
            "batch": 1, "smear": str(tmp_path / "smear.npy"), "timing": {}}
    out = _run_process(RunOptions(out=tmp_path), spec, timeout=120)
    assert out["status"].startswith("failed: ArtifactError: ") and "missing.onnx: no such model file" in out["status"]
    assert "Traceback" in out["traceback"]
    out = _run_process(RunOptions(out=tmp_path, python="/bin/false"), spec, timeout=30)
    assert out["status"] == "failed: cell process exit code 1: "


def test_contention_is_a_share_of_the_machine():
    import time

    from bcedge.bench.contention import Contention

    with Contention() as contention:
        time.sleep(0.3)
    assert contention.share is None or 0.0 <= contention.share <= 1.0


def test_resume_keeps_quiet_cells_and_reruns_contended_ones(tiny_run):
    results, root, _ = tiny_run
    path = root / "results" / "tiny.json"
    saved = json.loads(path.read_text())
    contended = f"{ARCH}/onnxruntime:cpu/fp32/b2/64x64"
    for cell in saved["cells"]:
        cell["other_cpu_share"] = 0.9 if cell["key"] == contended else 0.0
    path.write_text(json.dumps(saved))
    profile = get_profile("quick").__class__(**{**saved["profile"], "timing": get_profile("quick").timing,
                                                "tiles": ((64, 64),), "smear": (160, 128)})
    lines: list[str] = []
    options = RunOptions(out=root / "results", work=root / "work", data=root / "voc", name="tiny", resume=True,
                         max_contention=0.5, checkpoints={ARCH: root / "trained.pt"})
    again = run_matrix(profile, options, log=lines.append)
    before = {c["key"]: c for c in saved["cells"]}
    after = {c["key"]: c for c in again["cells"]}
    assert after[contended]["other_cpu_share"] != 0.9 and after[contended]["status"] == "ok"
    kept = f"{ARCH}/onnxruntime:cpu/fp32/b1/64x64"
    assert after[kept]["latency_per_tile"] == before[kept]["latency_per_tile"]
    assert after[contended]["accuracy"]["from_batch"] == 1          # shared again from the kept batch-1 cell
    assert any(line.startswith("resuming: 3 measured cells kept") for line in lines)
    assert again["resumed"][0]["kept"] == 3 and again["started"] == saved["started"]


def test_a_busy_machine_keeps_the_earlier_result_and_says_so(tiny_run, monkeypatch):
    from bcedge.bench import runner

    _, root, _ = tiny_run
    path = root / "results" / "tiny.json"
    saved = json.loads(path.read_text())
    contended = f"{ARCH}/onnxruntime:cpu/int8/b2/64x64"
    for cell in saved["cells"]:
        cell["other_cpu_share"] = 0.9 if cell["key"] == contended else 0.0
    path.write_text(json.dumps(saved))
    monkeypatch.setattr(runner, "wait_for_quiet", lambda threshold, wait, log: (wait, False))
    profile = get_profile("quick").__class__(**{**saved["profile"], "timing": get_profile("quick").timing,
                                                "tiles": ((64, 64),), "smear": (160, 128)})
    options = RunOptions(out=root / "results", work=root / "work", data=root / "voc", name="tiny", resume=True,
                         max_contention=0.5, quiet_wait_s=7, checkpoints={ARCH: root / "trained.pt"})
    again = {c["key"]: c for c in run_matrix(profile, options, log=lambda m: None)["cells"]}
    assert again[contended]["rerun_skipped"] == "machine still busy after 7 s"
    assert again[contended]["other_cpu_share"] == 0.9
