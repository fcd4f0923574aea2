"""Evaluation through the counting runtime: the eval command's table and groups, boxes per white cell,
and containment tuning."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bcedge.artifact import ModelMeta
from bcedge.data.annotations import Dataset, ImageAnnotation
from bcedge.detections import Detections
from bcedge.evaluate.onebox import boxes_per_white_cell
from bcedge.evaluate.table import metrics_table
from bcedge.evaluate.tuning import tune_containment

NAMES = ["RBC", "WBC", "Platelets"]
SAMPLE = Path(__file__).resolve().parents[2] / "bcedge" / "assets" / "sample_bccd"


def white_cell_case(tmp_path):
    record = ImageAnnotation(tmp_path / "a.png", 300, 300, np.array([[100, 100, 200, 200], [10, 10, 40, 40]], np.float32),
                             ["WBC", "RBC"])
    found = Detections(np.array([[100, 100, 200, 200], [110, 110, 190, 190], [120, 120, 140, 140], [10, 10, 40, 40]], np.float32),
                       np.array([0.9, 0.8, 0.9, 0.9], np.float32), np.array([1, 1, 2, 0]))
    return Dataset([record], NAMES), [found]


def test_boxes_per_white_cell_counts_lobes_and_duplicates(tmp_path):
    data, predictions = white_cell_case(tmp_path)
    result = boxes_per_white_cell(data, predictions, NAMES, {n: 0.5 for n in NAMES})
    assert result == {"white_cells": 1, "boxes_histogram": {3: 1}, "with_more_than_one_box": 1, "max_boxes": 3,
                      "labelled_platelets_on_white_cells": 0}


def test_a_platelet_on_a_white_cell_is_no_lobe_when_labelled_or_outside_the_detected_cell(tmp_path):
    # a loosely drawn WBC label [100,100,200,200]; the detector's WBC box is tighter [100,130,200,200]
    record = ImageAnnotation(tmp_path / "a.png", 300, 300, np.array([[100, 100, 200, 200], [160, 160, 180, 180]], np.float32),
                             ["WBC", "Platelets"])
    found = Detections(np.array([[100, 130, 200, 200], [160, 160, 180, 180], [110, 102, 130, 122], [120, 150, 140, 170]],
                                np.float32), np.full(4, 0.9, np.float32), np.array([1, 2, 2, 2]))
    result = boxes_per_white_cell(Dataset([record], NAMES), [found], NAMES, {n: 0.5 for n in NAMES})
    # the labelled platelet and the one above the detected cell are cells; the one inside it is a lobe
    assert result["boxes_histogram"] == {2: 1} and result["labelled_platelets_on_white_cells"] == 1


def test_containment_tuning_picks_rules_that_fix_the_white_cell_count(tmp_path):
    data, predictions = white_cell_case(tmp_path)
    meta = ModelMeta(arch="t", head="t", backbone="t", class_names=NAMES, input_size=(64, 64),
                     score_thresholds={n: 0.5 for n in NAMES})
    rules, trials = tune_containment(data, predictions, meta)
    assert {(r.inner, r.outer) for r in rules} == {("Platelets", "WBC"), ("WBC", "WBC")}
    assert trials["none"] > 0 and min(trials.values()) == 0


@pytest.mark.skipif(not (SAMPLE / "Annotations").is_dir(), reason="sample annotations not shipped")
def test_eval_command_runs_the_bundled_model_like_count_and_prints_a_table(tmp_path, capsys):
    import json

    from bcedge.cli import main

    out = tmp_path / "metrics.json"
    assert main(["eval", "default", "--data", str(SAMPLE), "--json", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "median rel. err" in printed and "RBC" in printed and "scale:" in printed
    assert "white cells with more than one box" in printed
    metrics = json.loads(out.read_text())
    assert metrics["images"] == 3 and 0.5 < metrics["mAP50"] <= 1.0
    assert metrics["scale"]["methods"].get("auto", 0) + metrics["scale"]["methods"].get("fallback", 0) == 3
    assert set(metrics["count_error"]) == set(NAMES)
    sources = tmp_path / "sources.yaml"    # the same data named by a sources YAML, as for training
    sources.write_text(f"sources:\n  - {{path: {SAMPLE}, name: sample}}\n")
    assert main(["eval", "default", "--data", str(sources), "--json", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text())["mAP50"] == metrics["mAP50"]


def test_table_lists_groups():
    entry = {"AP50": 0.9, "AP": 0.6, "precision": 0.8, "recall": 0.7}
    errors = {n: {"truth": 10, "count_mae": 1.0, "count_medre": 0.1} for n in NAMES}
    group = {"images": 4, "mAP50": 0.9, "mAP": 0.6, "count_error": errors}
    text = metrics_table({"mAP50": 0.9, "mAP": 0.6, "per_class": {n: entry for n in NAMES}, "count_error": errors,
                          "groups": {"txl/575x575": group, "bccd": group}})
    assert "txl/575x575" in text and "10.0%" in text


def test_count_thresholds_minimise_the_count_error_per_image(tmp_path):
    from bcedge.evaluate.operating import tune_count_thresholds

    records, predictions = [], []
    for i in range(4):   # 5 labelled cells per image; the detector scores 5 of them high, 1 false box at 0.45
        records.append(ImageAnnotation(tmp_path / f"{i}.png", 100, 100, np.zeros((5, 4), np.float32), ["RBC"] * 5))
        scores = np.array([0.9, 0.8, 0.7, 0.5, 0.40, 0.45], np.float32)
        predictions.append(Detections(np.tile([[0, 0, 10, 10]], (6, 1)).astype(np.float32), scores, np.zeros(6, int)))
    chosen = tune_count_thresholds(Dataset(records, ["RBC"]), predictions, ["RBC"], near={"RBC": 0.5})
    assert 0.40 < chosen["RBC"] <= 0.45   # five boxes counted: 0.9, 0.8, 0.7, 0.5 and 0.45


@pytest.mark.skipif(not (SAMPLE / "Annotations").is_dir(), reason="sample annotations not shipped")
def test_eval_matches_other_class_names_to_the_models(tmp_path, capsys):
    """A lab's own labels name the cells otherwise: the same figures, the names matched and said; a class the
    model has no name for is refused by name, or left out with --class-map."""
    import json
    import shutil

    from bcedge.cli import main

    data = tmp_path / "lab"
    shutil.copytree(SAMPLE, data)
    renamed = {"RBC": "red_blood_cell", "WBC": "Leukocyte", "Platelets": "platelet"}
    for xml in (data / "Annotations").glob("*.xml"):
        text = xml.read_text()
        for ours, theirs in renamed.items():
            text = text.replace(f"<name>{ours}</name>", f"<name>{theirs}</name>")
        xml.write_text(text.replace("</annotation>", "<object><name>difficult</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
                                                     "<xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>"))
    assert main(["eval", "default", "--data", str(data), "--quiet"]) != 0
    assert "classes ['difficult'] are not among ['RBC', 'WBC', 'Platelets']" in capsys.readouterr().err
    figures = []
    for folder, extra in ((SAMPLE, []), (data, ["--class-map", "difficult="])):
        out = tmp_path / f"{folder.name}.json"
        assert main(["eval", "default", "--data", str(folder), "--json", str(out), "--quiet", *extra]) == 0
        figures.append(json.loads(out.read_text()))
    printed = capsys.readouterr().out
    assert "class 'Leukocyte' of the data counted as 'WBC'" in printed and "class 'difficult': boxes left out" in printed
    assert figures[1]["class_map"] == {**{v: k for k, v in renamed.items()}, "difficult": None}
    assert figures[1]["mAP50"] == figures[0]["mAP50"] and figures[1]["count_error"] == figures[0]["count_error"]


def test_predict_can_count_each_image_as_if_it_were_the_first(tmp_path):
    """``remember_scale=False``: no image's scale guess comes from the images before it."""
    from types import SimpleNamespace

    from bcedge.evaluate.runtime_eval import predict
    from bcedge.runtime.scale import History

    class RememberingCounter:
        def __init__(self) -> None:
            self.scale_history, self.seen = History(), []

        def count_file(self, path):
            self.seen.append(self.scale_history)
            self.scale_history = self.scale_history.after(0.5, (10, 10))
            return SimpleNamespace(detections=Detections.empty(), scale=None)

    data = Dataset([ImageAnnotation(tmp_path / f"{i}.png", 10, 10, np.zeros((0, 4)), []) for i in range(3)], NAMES)
    for remember, seen in ((True, [(), (0.5,), (0.5, 0.5)]), (False, [(), (), ()])):
        counter = RememberingCounter()
        predict(counter, data, remember_scale=remember)
        assert [h.factors for h in counter.seen] == seen
