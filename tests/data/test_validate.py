import logging

import numpy as np
import pytest

from bcedge.data import DatasetError, load_dataset, validate
from dataset_builders import write_image, write_voc

GOOD = ("RBC", 10, 10, 30, 30)


def _voc(tmp_path, objects, **kwargs):
    return load_dataset(write_voc(tmp_path, {"img": [GOOD, *objects]}, **kwargs))


def _only(report, kind):
    found = [p for p in report.problems if p.kind == kind]
    assert len(found) == 1, report.format()
    return found[0]


def test_zero_area_box_is_named_and_dropped(tmp_path):
    ds = _voc(tmp_path, [("RBC", 40, 20, 40, 20), ("WBC", 50, 20, 45, 30)])
    report = validate(ds)
    zero = [p for p in report.problems if p.kind == "zero_area"]
    assert [p.index for p in zero] == [1, 2] and all(p.file.endswith("img.xml") for p in zero)
    assert "zero width and height" in zero[0].detail and "negative width (-5)" in zero[1].detail
    assert ds.images[0].boxes.tolist() == [[10, 10, 30, 30]] and ds.class_names == ["RBC", "WBC"]


def test_out_of_bounds_small_is_clipped_large_is_dropped(tmp_path):
    ds = _voc(tmp_path, [("RBC", 50, 40, 65, 49), ("RBC", -30, 5, 20, 20)])  # image 64x48
    problems = validate(ds).problems
    assert [(p.index, p.action, p.severity) for p in problems] == [(1, "clipped", "warning"), (2, "dropped box", "error")]
    assert "1 px beyond the right edge" in problems[0].detail and "30 px beyond the left edge" in problems[1].detail
    assert ds.images[0].boxes.tolist() == [[10, 10, 30, 30], [50, 40, 64, 48]]


def test_unknown_label_against_expected_classes_and_empty_label(tmp_path):
    ds = _voc(tmp_path, [("Neutrophil", 1, 1, 9, 9), ("", 2, 2, 8, 8)])
    report = validate(ds, classes=["RBC", "WBC"])
    unknown = [p for p in report.problems if p.kind == "unknown_label"]
    assert "'Neutrophil' is not a known class" in unknown[0].detail and "empty label" in unknown[1].detail
    assert ds.images[0].labels == ["RBC"] and ds.class_names == ["RBC", "WBC"]


def test_inconsistent_label_spelling_is_renamed(tmp_path):
    ds = load_dataset(write_voc(tmp_path, {"a": [GOOD, GOOD[:1] + (40, 10, 60, 30,)], "b": [("rbc ", 5, 5, 15, 15)]}))
    assert ds.class_names == ["RBC", "rbc"]
    problem = _only(validate(ds), "inconsistent_label")
    assert problem.file.endswith("b.xml") and problem.index == 0 and "'rbc' differs from class 'RBC'" in problem.detail
    assert ds.images[1].labels == ["RBC"] and ds.class_names == ["RBC"]


def test_missing_and_unreadable_images_drop_the_image(tmp_path):
    root = write_voc(tmp_path, {"a": [GOOD], "b": [GOOD], "c": [GOOD]})
    (root / "JPEGImages" / "b.png").unlink()
    (root / "JPEGImages" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    ds = load_dataset(root)
    report = validate(ds)
    missing, unreadable = _only(report, "missing_image"), _only(report, "unreadable_image")
    assert missing.file.endswith("b.xml") and "b.png: no such image file" in missing.detail
    assert unreadable.file.endswith("c.xml") and "c.png" in unreadable.detail and unreadable.action == "dropped image"
    assert [r.name for r in ds] == ["a.png"]


def test_image_size_differing_from_annotation(tmp_path):
    root = write_voc(tmp_path, {"img": [GOOD]})
    write_image(root / "JPEGImages" / "img.png", 32, 32)
    problem = _only(validate(load_dataset(root), policy="keep"), "size_mismatch")
    assert "img.png is 32x32 but annotated as 64x48" in problem.detail and problem.action == ""


@pytest.mark.parametrize("channels,word", [(1, "greyscale"), (4, "RGBA")])
def test_greyscale_and_rgba_images_are_noted(tmp_path, channels, word):
    root = write_voc(tmp_path, {"img": [GOOD]})
    write_image(root / "JPEGImages" / "img.png", 64, 48, channels=channels)
    ds = load_dataset(root)
    problem = _only(validate(ds), "converted_image")
    assert word in problem.detail and "converted at load" in problem.detail and problem.severity == "warning"
    assert len(ds) == 1  # a warning drops nothing


def test_duplicate_box_keeps_one_copy(tmp_path):
    ds = _voc(tmp_path, [("RBC", 10, 10, 30, 30.2)])
    problem = _only(validate(ds), "duplicate_box")
    assert problem.index == 1 and "repeats box 0" in problem.detail
    assert len(ds.images[0].boxes) == 1


def test_same_box_with_conflicting_labels_drops_both(tmp_path):
    ds = _voc(tmp_path, [("WBC", 10, 10, 30, 30), ("RBC", 40, 10, 60, 30)])
    problem = _only(validate(ds), "conflicting_labels")
    assert problem.index == 1 and "(RBC)" in problem.detail and "another label" in problem.detail
    assert ds.images[0].boxes.tolist() == [[40, 10, 60, 30]]


def test_policies_keep_fail_and_logging(tmp_path, caplog):
    ds = _voc(tmp_path, [("RBC", 40, 20, 40, 20)])
    before = ds.images[0].boxes.copy()
    assert len(validate(ds, policy="keep").problems) == 1 and np.array_equal(ds.images[0].boxes, before)
    with pytest.raises(DatasetError, match=r"img\.xml: box 1: zero_area"):
        validate(ds, policy="fail")
    with caplog.at_level(logging.WARNING, logger="bcedge.data"):
        report = validate(ds, policy="drop")
    assert "1 problem (zero_area 1)" in caplog.text and report.dataset is ds and len(ds.images[0].boxes) == 1
    with pytest.raises(ValueError, match="unknown validation policy"):
        validate(ds, policy="ignore")


def test_load_training_data_names_each_problem_once(tmp_path, caplog):
    from bcedge.train.prepare import load_training_data

    path = write_voc(tmp_path, {"img": [GOOD, ("RBC", 40, 20, 40, 20)]})
    printed: list[str] = []
    with caplog.at_level(logging.WARNING, logger="bcedge.data"):
        data = load_training_data(path, log=printed.append)
    assert caplog.text.count("1 problem (zero_area 1)") == 1  # the summary, logged once by validate()
    assert len(printed) == 1 and "1 problem" not in printed[0] and "box 1: zero_area" in printed[0]
    assert [len(r.boxes) for r in data.images] == [1]
