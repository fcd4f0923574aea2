import json

import numpy as np
import pytest

from bcedge.data import DatasetError, load_dataset, write_coco
from dataset_builders import write_image, write_json, write_voc


def _coco(tmp_path):
    write_image(tmp_path / "img" / "x.png", 40, 30)
    write_image(tmp_path / "img" / "y.png", 20, 10)
    return write_json(tmp_path / "train.json", {
        "images": [{"id": 7, "file_name": "img/x.png", "width": 40, "height": 30},
                   {"id": 9, "file_name": "img/y.png"}],
        "categories": [{"id": 5, "name": "WBC"}, {"id": 2, "name": "RBC"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 5, "bbox": [1, 2, 10, 20], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 2, "bbox": [5.5, 6, 3, 4]},
            {"id": 3, "image_id": 7, "category_id": 2, "bbox": [0, 0, 40, 30], "iscrowd": 1},
        ],
    })


def test_reads_boxes_and_keeps_category_id_order(tmp_path):
    ds = load_dataset(_coco(tmp_path))
    assert ds.format == "coco" and ds.class_names == ["RBC", "WBC"]  # ids 2, 5
    x, y = ds.images
    assert x.boxes.tolist() == [[1, 2, 11, 22], [5.5, 6, 8.5, 10]] and x.labels == ["WBC", "RBC"]
    assert x.image_path == tmp_path / "img" / "x.png"
    assert (y.width, y.height) == (20, 10) and len(y.boxes) == 0  # size read from the image header
    assert any("1 iscrowd" in note for note in ds.notes)


def test_folder_with_split_picks_the_file(tmp_path):
    _coco(tmp_path)
    write_json(tmp_path / "val.json", {"images": [], "annotations": [], "categories": []})
    assert len(load_dataset(tmp_path, split="train")) == 2
    with pytest.raises(DatasetError, match="several annotation files"):
        load_dataset(tmp_path)


def test_write_coco_ids_and_fields(tmp_path):
    ds = load_dataset(_coco(tmp_path))
    out = write_coco(ds, tmp_path / "out.json")
    data = json.loads(out.read_text())
    assert [c["id"] for c in data["categories"]] == [1, 2] and data["categories"][0]["name"] == "RBC"
    assert [i["id"] for i in data["images"]] == [1, 2]
    assert data["images"][0]["file_name"] == "img/x.png"  # inside the output folder: relative
    first = data["annotations"][0]
    assert first["bbox"] == [1, 2, 10, 20] and first["area"] == 200 and first["iscrowd"] == 0
    assert first["category_id"] == 2 and first["image_id"] == 1
    elsewhere = json.loads(write_coco(ds, tmp_path / "sub" / "o.json").read_text())
    assert elsewhere["images"][0]["file_name"] == str((tmp_path / "img" / "x.png").resolve())


def test_voc_to_coco_round_trip_is_identical(tmp_path):
    voc = load_dataset(write_voc(tmp_path / "voc", {
        "a": [("RBC", 0.5, 1.25, 20.75, 30), ("WBC", 3, 4, 50, 40)], "b": [], "c": [("Platelets", 1, 1, 7, 9)]}))
    back = load_dataset(write_coco(voc, tmp_path / "coco" / "all.json"))
    assert back.class_names == voc.class_names
    for a, b in zip(voc, back, strict=True):
        assert a.image_path.resolve() == b.image_path.resolve() and (a.width, a.height) == (b.width, b.height)
        assert np.array_equal(a.boxes, b.boxes) and a.labels == b.labels


def test_malformed_json_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(DatasetError, match=r"bad\.json: malformed JSON at line 2"):
        load_dataset(bad, fmt="coco")


def test_annotation_for_unknown_image_names_it(tmp_path):
    path = write_json(tmp_path / "c.json", {"images": [], "categories": [{"id": 1, "name": "RBC"}],
                                            "annotations": [{"id": 4, "image_id": 3, "category_id": 1, "bbox": [0, 0, 1, 1]}]})
    with pytest.raises(DatasetError, match=r"c\.json: annotations\[0\] \(id 4\): image_id 3"):
        load_dataset(path)


def test_write_refuses_label_outside_classes(tmp_path):
    ds = load_dataset(write_voc(tmp_path, {"a": [("RBC", 1, 1, 5, 5)]}))
    ds.images[0].labels = ["rbc"]
    with pytest.raises(DatasetError, match="'rbc'"):
        write_coco(ds, tmp_path / "o.json")
