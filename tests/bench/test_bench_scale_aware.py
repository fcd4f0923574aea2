"""The matrix with a dynamic-input, scale-aware model (the FCOS-Lite head): measured at a tile other than
its trained input, counted at its own scale, scored through the counting runtime, INT8 calibrated on
training images resampled to its scale."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench_results import write_tiny_voc
from bcedge.bench.artifacts import ArtifactSet
from bcedge.bench.matrix import Cell, get_profile
from bcedge.bench.runner import RunOptions, _accuracy_plan, run_matrix, with_overrides

ARCH = "fcos_lite_efficientnet_lite0"
TRAINED, TILE = (64, 64), (96, 64)      # the cell's tile is not the trained input: only a dynamic model may run it
CELL_PX, LABELLED_PX = 10.0, 20.0       # the tiny set's red cells are 20 px: the model resamples them by 0.5


@pytest.fixture(scope="module")
def scale_aware_run(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from bcedge.models import build_detector

    root = tmp_path_factory.mktemp("bench_scale")
    data = write_tiny_voc(root / "voc")
    torch.manual_seed(0)
    detector = build_detector(ARCH, ["RBC", "WBC", "Platelets"], TRAINED, pretrained=False)
    assert detector.meta.dynamic_input
    detector.meta.pixel_scale = {"cell_class": "RBC", "cell_px": CELL_PX, "training_data": {"median_px": LABELLED_PX}}
    detector.meta.max_object_size = 20       # its largest cell, model pixels: the overlap the counter takes from it
    checkpoint = root / "lite.pt"
    detector.save(checkpoint)
    profile = with_overrides(get_profile("quick"), archs=[ARCH], tiles=[TILE], batches=[1], precisions=["fp32", "int8"],
                             runners=["onnxruntime:cpu"], smear=(160, 128), smear_overlap=30, min_iterations=2)
    options = RunOptions(out=root / "results", work=root / "work", data=data, name="lite", checkpoints={ARCH: checkpoint})
    return run_matrix(profile, options, log=lambda m: None), root


def _cells(results) -> dict:
    return {c["key"]: c for c in results["cells"]}


def test_a_dynamic_model_is_measured_at_a_tile_it_was_not_trained_at(scale_aware_run):
    results, root = scale_aware_run
    cells = _cells(results)
    for precision in ("fp32", "int8"):
        cell = cells[f"{ARCH}/onnxruntime:cpu/{precision}/b1/{TILE[0]}x{TILE[1]}"]
        assert cell["status"] == "ok", cell.get("traceback", cell["status"])
        assert cell["dynamic_input"] and cell["latency_per_tile"]["n"] >= 2
        assert cell["accuracy"]["status"] == "ok"            # not "not measured: trained at 64x64"
    from bcedge.artifact import read_meta

    exported = read_meta(root / "work" / f"{ARCH}_{TILE[0]}x{TILE[1]}" / "model.onnx")
    assert exported.dynamic_input and tuple(exported.input_size) == TRAINED    # one export, its own metadata


def test_a_scale_aware_model_counts_at_its_scale_and_is_scored_through_the_runtime(scale_aware_run):
    results, _ = scale_aware_run
    cell = _cells(results)[f"{ARCH}/onnxruntime:cpu/fp32/b1/{TILE[0]}x{TILE[1]}"]
    assert cell["working_scale_cell_px"] == CELL_PX
    smear = cell["smear"]
    assert smear["scale"]["factor"] == pytest.approx(CELL_PX / LABELLED_PX)     # resampled, not counted as is
    assert smear["tile"] == list(TILE) and smear["overlap"] != 30               # its own overlap, in its pixels
    accuracy = cell["accuracy"]
    assert "evaluate_runtime" in accuracy["method"] and accuracy["images"] == 2
    assert accuracy["scale"]["factor_median"] == pytest.approx(CELL_PX / LABELLED_PX)


def test_int8_is_calibrated_on_training_images_at_the_models_scale(scale_aware_run):
    results, _ = scale_aware_run
    calib = Path(results["artifacts"][f"{ARCH}_{TILE[0]}x{TILE[1]}"]["calibration"])
    manifest = json.loads((calib / "manifest.json").read_text())
    assert manifest["resampled_to_cell_px"] == CELL_PX and manifest["input_size"] == list(TRAINED)


def test_the_report_says_what_a_scale_aware_tile_covers(scale_aware_run):
    results, root = scale_aware_run
    text = (root / "results" / "lite.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| {ARCH} |") and "| fp32 |" in line)
    assert "| x0.50 (RBC 10 px) |" in row
    assert f"{ARCH} is scale-aware" in text and "covers 4.0x the smear area" in text


def _artifacts(dynamic: bool) -> ArtifactSet:
    return ArtifactSet("m", TILE, Path("."), checkpoint=Path("m.pt"), trained_input_size=TRAINED, dynamic_input=dynamic)


def test_only_fixed_input_models_are_scored_at_their_trained_size_only(tmp_path):
    cell = Cell("m", "onnxruntime", "cpu", "fp32", 1, TILE)
    measure, entry = _accuracy_plan(cell, _artifacts(dynamic=False), tmp_path, 1)
    assert not measure and entry["status"] == "not measured: trained at 64x64, this tile is 96x64"
    assert _accuracy_plan(cell, _artifacts(dynamic=True), tmp_path, 1) == (True, None)


def test_a_dynamic_engine_is_optimised_for_the_cell_tile_and_keeps_the_default_range():
    from bcedge.artifact import ModelMeta
    from bcedge.bench.artifacts import engine_input_sizes
    from bcedge.convert.onnx2engine import input_profile

    fields = {"arch": "a", "head": "fcos_lite", "backbone": "b", "class_names": ["RBC"]}
    dynamic = ModelMeta(**fields, input_size=(352, 288), dynamic_input=True, stride=32)
    low, _, high = input_profile(dynamic)
    assert high == (704, 576)
    assert engine_input_sizes(dynamic, (1024, 768)) == (low, (1024, 768), (1024, 768))   # the gpu profile's big tile
    assert engine_input_sizes(dynamic, (640, 480)) == (low, (640, 480), high)
    assert engine_input_sizes(ModelMeta(**fields, input_size=(640, 480)), (640, 480)) is None
