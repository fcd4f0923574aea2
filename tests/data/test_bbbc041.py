import pytest

from bcedge.data import DatasetError, load_dataset
from dataset_builders import write_image, write_json


def _entry(path, rows, cols, objects):
    return {"image": {"checksum": "x", "pathname": path, "shape": {"r": rows, "c": cols, "channels": 3}},
            "objects": [{"bounding_box": {"minimum": {"r": r0, "c": c0}, "maximum": {"r": r1, "c": c1}}, "category": cat}
                        for cat, r0, c0, r1, c1 in objects]}


def test_rows_are_y_and_columns_are_x_on_a_non_square_image(tmp_path):
    write_image(tmp_path / "images" / "wide.png", 60, 20)  # 60 columns, 20 rows
    path = write_json(tmp_path / "training.json", [_entry("/images/wide.png", 20, 60, [("red blood cell", 2, 40, 18, 55)])])
    ds = load_dataset(path)
    record = ds.images[0]
    assert ds.format == "bbbc041" and (record.width, record.height) == (60, 20)
    assert record.boxes.tolist() == [[40, 2, 55, 18]]  # x0=c, y0=r, x1=c, y1=r
    assert record.image_path == tmp_path / "images" / "wide.png" and record.image_path.is_file()


def test_class_order_counts_every_split_file(tmp_path):
    write_json(tmp_path / "training.json", [_entry("/images/a.png", 8, 8, [("ring", 0, 0, 1, 1)])])
    write_json(tmp_path / "test.json", [_entry("/images/b.png", 8, 8, [("trophozoite", 0, 0, 1, 1)] * 2)])
    train = load_dataset(tmp_path, split="train")  # "train" finds training.json
    assert [r.image_path.name for r in train] == ["a.png"]
    assert train.class_names == load_dataset(tmp_path, split="test").class_names == ["trophozoite", "ring"]


def test_missing_key_names_entry_and_object(tmp_path):
    entry = _entry("/images/a.png", 8, 8, [("ring", 0, 0, 1, 1)])
    del entry["objects"][0]["bounding_box"]["maximum"]
    path = write_json(tmp_path / "training.json", [entry])
    with pytest.raises(DatasetError, match=r"training\.json: entry 0 \(/images/a\.png\): object 0: missing 'maximum'"):
        load_dataset(path)
