"""A dataset's class names matched to a model's: spellings, common names, an explicit map, clear refusals."""
from __future__ import annotations

import numpy as np
import pytest

from bcedge.data.annotations import Dataset, ImageAnnotation
from bcedge.data.class_names import match_classes, parse_class_map, relabelled

MODEL = ["RBC", "WBC", "Platelets"]


def test_spellings_and_common_names_match():
    names = ["rbc", "White_Blood-Cell", "platelet", "Erythrocyte", "neutrophil", "Thrombocytes", "RBC"]
    assert match_classes(names, MODEL) == {"rbc": "RBC", "White_Blood-Cell": "WBC", "platelet": "Platelets",
                                           "Erythrocyte": "RBC", "neutrophil": "WBC", "Thrombocytes": "Platelets",
                                           "RBC": "RBC"}


def test_same_spelling_beats_a_common_name():
    # a model of white-cell types: "neutrophil" is its own class, not "a white cell"
    assert match_classes(["Neutrophil", "leukocyte"], ["neutrophil", "WBC"]) == {"Neutrophil": "neutrophil",
                                                                                  "leukocyte": "WBC"}


def test_unknown_or_ambiguous_names_are_refused_by_name():
    with pytest.raises(ValueError, match=r"\['difficult', 'trophozoite'\].*NAME=CLASS"):
        match_classes(["red blood cell", "trophozoite", "difficult"], MODEL)
    with pytest.raises(ValueError, match="leukocyte"):   # kinds of white cell only: which one is not for us to guess
        match_classes(["leukocyte"], ["lymphocyte", "monocyte"])


def test_an_explicit_map_renames_and_drops():
    assert match_classes(["red", "difficult"], MODEL, {"red": "RBC", "difficult": None}) == {"red": "RBC",
                                                                                             "difficult": None}
    with pytest.raises(ValueError, match="'Reticulocyte' is not one of the model's classes"):
        match_classes(["red"], MODEL, {"red": "Reticulocyte"})


def test_relabelled_drops_left_out_boxes_and_leaves_the_input_alone():
    record = ImageAnnotation("a.png", 100, 100, np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]),
                             ["erythrocyte", "difficult", "platelet"])
    data = Dataset([record], ["erythrocyte", "difficult", "platelet"])
    mapped, changed = relabelled(data, MODEL, {"difficult": None})
    assert mapped.images[0].labels == ["RBC", "Platelets"] and len(mapped.images[0].boxes) == 2
    assert mapped.class_names == MODEL
    assert changed == {"erythrocyte": "RBC", "difficult": None, "platelet": "Platelets"}
    assert record.labels == ["erythrocyte", "difficult", "platelet"] and len(record.boxes) == 3


@pytest.mark.parametrize("items, expected", [(["red=RBC", " difficult = "], {"red": "RBC", "difficult": None}),
                                             ([], {})])
def test_parse_class_map(items, expected):
    assert parse_class_map(items) == expected


@pytest.mark.parametrize("item", ["RBC", "=RBC"])
def test_parse_class_map_refuses_malformed_items(item):
    with pytest.raises(ValueError, match="expected NAME=CLASS"):
        parse_class_map([item])
