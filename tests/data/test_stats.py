import json

import pytest

from bcedge.data import dataset_stats, format_stats, load_dataset, sample_dataset_path
from dataset_builders import BCCD, write_voc


def test_stats_on_a_crafted_dataset(tmp_path):
    ds = load_dataset(write_voc(tmp_path, {"a": [("RBC", 0, 0, 10, 10), ("RBC", 20, 20, 24, 29), ("WBC", 30, 0, 60, 40)],
                                           "b": [("RBC", 5, 5, 5, 9)]}))
    stats = dataset_stats(ds)
    json.dumps(stats)
    assert stats["images"] == 2 and stats["boxes"] == 4
    rbc = stats["per_class"]["RBC"]
    assert (rbc["boxes"], rbc["valid"], rbc["images"]) == (3, 2, 2)
    assert rbc["size"]["median"] == 8.0 and rbc["width"]["p90"] == pytest.approx(9.4)  # sizes 6 and 10
    assert stats["objects_per_image"] == {"mean": 2.0, "min": 1, "max": 3, "no_boxes": 0}
    assert stats["imbalance"] == {"ratio": 3.0, "most": "RBC", "least": "WBC"}
    text = format_stats(stats)
    assert "b.xml: box 0: zero_area" in text and "class imbalance: 3.0 (RBC 3 / WBC 1)" in text


def test_sample_names_its_zero_size_box():
    stats = dataset_stats(load_dataset(sample_dataset_path(), split="val"))
    assert stats["problems"]["by_kind"] == {"zero_area": 1}
    assert stats["problems"]["problems"][0]["file"].endswith("BloodImage_00338.xml")


@pytest.mark.skipif(not BCCD.is_dir(), reason="BCCD not present in shared/data")
@pytest.mark.parametrize("split,counts,zero", [
    ("train", {"RBC": 2382, "WBC": 214, "Platelets": 209}, "BloodImage_00343.xml"),
    ("val", {"RBC": 968, "WBC": 87, "Platelets": 83}, "BloodImage_00338.xml"),
])
def test_bccd_splits(split, counts, zero):
    stats = dataset_stats(load_dataset(BCCD, split=split), check_images=split == "train")
    assert stats["images"] == {"train": 205, "val": 87}[split]
    assert {name: c["boxes"] for name, c in stats["per_class"].items()} == counts
    assert stats["per_class"]["RBC"]["valid"] == counts["RBC"] - 1
    problems = stats["problems"]["problems"]
    assert [(p["kind"], p["file"].rsplit("/", 1)[-1]) for p in problems] == [("zero_area", zero)]
    assert zero in format_stats(stats)
