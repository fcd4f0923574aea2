import time
from pathlib import Path

import numpy as np
import pytest

from bcedge.data import DatasetError, dataset_stats, detect_format, load_dataset, validate
from bcedge.data.yolo import label_path, parse_config, write_yolo as write_yolo_split
from dataset_builders import write_image, write_voc, write_yolo

NAMES = ("WBC", "RBC", "Platelets")  # data.yaml order, not box-count order
ITEMS = {
    "train": {"a": ["1 0.5 0.5 0.25 0.5", "2 0.25 0.25 0.125 0.25"], "b": ["0 0.5 0.5 1 1", "1 0.5 0.5 0.5 0.5"]},
    "val": {"c": ["1 0.5 0.5 0.25 0.5"]},
}
TXL_PBC = Path("/work/shared/data/txl-pbc")


def test_ultralytics_layout_reads_pixel_boxes_in_data_yaml_class_order(tmp_path):
    root = write_yolo(tmp_path, ITEMS, names=NAMES)
    assert detect_format(root) == "yolo" and detect_format(root / "data.yaml") == "yolo"
    ds = load_dataset(root, split="train")
    assert ds.format == "yolo" and ds.class_names == ["WBC", "RBC", "Platelets"]
    assert [r.name for r in ds] == ["a.png", "b.png"]
    a, b = ds.images
    assert (a.width, a.height) == (64, 48)
    assert a.boxes.tolist() == [[24, 12, 40, 36], [12, 6, 20, 18]] and a.labels == ["RBC", "Platelets"]
    assert b.boxes.tolist() == [[0, 0, 64, 48], [16, 12, 48, 36]] and b.labels == ["WBC", "RBC"]
    assert a.source == str(root / "labels" / "train" / "a.txt")
    assert [r.name for r in load_dataset(root / "data.yaml", split="val")] == ["c.png"]
    assert len(load_dataset(root)) == 3  # no split: every split


def test_roboflow_split_first_layout(tmp_path):
    root = write_yolo(tmp_path, {"train": ITEMS["train"], "valid": ITEMS["val"]}, names=NAMES, split_first=True)
    config = (root / "data.yaml").read_text().replace("valid:", "val:")  # Roboflow: val: ../valid/images
    (root / "data.yaml").write_text(config + "roboflow:\n  workspace: lab\n  version: 2\n  url: https://x/y  # link\n")
    ds = load_dataset(root, split="val")
    assert [r.image_path for r in ds] == [root / "valid" / "images" / "c.png"]
    assert ds.images[0].source == str(root / "valid" / "labels" / "c.txt") and ds.images[0].labels == ["RBC"]
    assert label_path(Path("/d/train/images/x.jpg")) == Path("/d/train/labels/x.txt")
    assert label_path(Path("/images/d/images/train/x.jpg")) == Path("/images/d/labels/train/x.txt")


def test_names_as_mapping_path_key_comments_and_flow_lists(tmp_path):
    write_yolo(tmp_path / "ds", ITEMS, names=NAMES)
    config = tmp_path / "cells.yaml"
    config.write_text("# cells\npath: ds  # base folder\ntrain: [images/train]\nval: images/val\ntest:  # none\n"
                      "names:\n  0: WBC\n  1: 'RBC'\n  2: \"Platelets\"\ndownload: |\n  import os\n  x: y\n")
    assert parse_config(config)["names"] == {0: "WBC", 1: "RBC", 2: "Platelets"}
    ds = load_dataset(config, split="train")
    assert ds.class_names == list(NAMES) and len(ds) == 2 and ds.root == tmp_path / "ds"
    flow = tmp_path / "ds" / "data.yaml"
    flow.write_text("train: images/train\nval: images/val\nnames: {0: WBC,\n  1: RBC, 2: Platelets}\n")
    assert load_dataset(flow, split="val").class_names == list(NAMES)


def test_config_errors_name_the_file(tmp_path):
    root = write_yolo(tmp_path, ITEMS, names=NAMES)
    (root / "data.yaml").write_text("train: images/train\nnc: 2\nnames: [WBC, RBC, Platelets]\n")
    with pytest.raises(DatasetError, match=r"data\.yaml: nc is 2 but names lists 3 classes"):
        load_dataset(root)
    (root / "data.yaml").write_text("train: images/train\nval: images/valid\nnames: [WBC, RBC, Platelets]\n")
    with pytest.raises(DatasetError, match=r"data\.yaml: no split 'test'; splits here: train, val"):
        load_dataset(root, split="test")
    with pytest.raises(DatasetError, match=r"data\.yaml: val: images/valid is not a folder"):
        load_dataset(root, split="val")
    ds = load_dataset(root)  # every split: an absent one is skipped and said so
    assert len(ds) == 2 and any("split 'val' skipped" in note for note in ds.notes)
    (root / "data.yaml").write_text("train: ../elsewhere\nnames: [WBC, RBC, Platelets]\n")
    with pytest.raises(DatasetError, match=r"data\.yaml: none of the split folders \(\.\./elsewhere\) exist"):
        load_dataset(root)


def test_malformed_lines_are_refused_each_named_with_file_and_line(tmp_path):
    bad = ["1 0.5 0.5 0.25 0.5", "", "1 0.5 0.5 0.25", "1 0.5 zero 0.25 0.5", "3 0.5 0.5 0.1 0.1", "1.5 0.5 0.5 0.1 0.1",
           "1 0.5 0.5 0.25 0.5 0.9"]
    root = write_yolo(tmp_path, {"train": {"a": bad, "b": ["-1 0.5 0.5 0.1 0.1"]}}, names=NAMES)
    with pytest.raises(DatasetError) as caught:
        load_dataset(root, split="train")
    message, a, b = str(caught.value), root / "labels" / "train" / "a.txt", root / "labels" / "train" / "b.txt"
    assert message.startswith(f"{root / 'data.yaml'}: 6 label line(s) are not 'class x_center y_center width height'")
    assert f"{a}, line 3: 4 fields, expected 5" in message
    assert f"{a}, line 4: 'zero' is not a number" in message
    assert f"{a}, line 5: class id 3 is not in names (ids 0..2)" in message
    assert f"{a}, line 6: class id '1.5' is not a whole number" in message
    assert f"{a}, line 7: 6 fields" in message
    assert f"{b}, line 1: class id -1 is not in names" in message


def test_bad_boxes_are_left_to_validation_and_rounding_is_clipped(tmp_path):
    lines = ["1 0.5 0.5 0.25 0.5", "1 0.5 0.5 0.25 0.5", "1 0.9 0.5 0.4 0.2", "2 0.5 0.5 0 0.1", "0 0.9375 0.5 0.125 1.00001"]
    root = write_yolo(tmp_path, {"train": {"a": lines}}, names=NAMES)
    ds = load_dataset(root, split="train")
    assert ds.images[0].boxes[4].tolist() == [56, 0, 64, 48]  # 1.000005 past the edge: rounding, clipped
    report = validate(ds, policy="drop")
    source = str(root / "labels" / "train" / "a.txt")
    assert {(p.kind, p.index) for p in report.problems} == {("duplicate_box", 1), ("out_of_bounds", 2), ("zero_area", 3)}
    assert all(p.file == source for p in report.problems)
    assert len(ds.images[0].boxes) == 2


def test_images_without_labels_hold_no_cells_and_labels_without_images_are_missing(tmp_path):
    root = write_yolo(tmp_path, ITEMS, names=NAMES)
    write_image(root / "images" / "train" / "empty.png", 64, 48)
    (root / "labels" / "train" / "ghost.txt").write_text("1 0.5 0.5 0.25 0.5\n")
    (root / "labels" / "train" / "classes.txt").write_text("WBC\nRBC\nPlatelets\n")  # labelImg's class list
    ds = load_dataset(root, split="train")
    by_name = {r.image_path.stem: r for r in ds}
    assert set(by_name) == {"a", "b", "empty", "ghost"} and len(by_name["empty"].boxes) == 0
    assert "1 images without a label file (read as holding no cells)" in ds.notes
    assert any(note.startswith("1 label files without an image") for note in ds.notes)
    stats = dataset_stats(ds)
    assert stats["objects_per_image"]["no_boxes"] == 1
    missing = [p for p in stats["problems"]["problems"] if p["kind"] == "missing_image"]
    assert [p["file"] for p in missing] == [f"{root / 'labels' / 'train' / 'ghost.txt'} (no image)"]


def test_polygon_lines_become_bounding_boxes(tmp_path):
    root = write_yolo(tmp_path, {"train": {"a": ["2 0.25 0.5 0.5 0.25 0.75 0.5 0.5 0.75"]}}, names=NAMES)
    record = load_dataset(root, split="train").images[0]
    assert record.boxes.tolist() == [[16, 12, 48, 36]] and record.labels == ["Platelets"]


def test_split_listed_in_a_text_file(tmp_path):
    root = write_yolo(tmp_path, ITEMS, names=NAMES)
    (root / "train.txt").write_text("./images/train/b.png\n")
    (root / "data.yaml").write_text("train: train.txt\nval: images/val\nnames: [WBC, RBC, Platelets]\n")
    ds = load_dataset(root, split="train")
    assert [r.name for r in ds] == ["b.png"] and ds.images[0].labels == ["WBC", "RBC"]


def test_data_stats_cli_reads_yolo(tmp_path, capsys):
    from bcedge.cli import main

    root = write_yolo(tmp_path, ITEMS, names=NAMES)
    assert main(["data", "stats", str(root), "--split", "train"]) == 0
    out = capsys.readouterr().out
    assert f"{root} (yolo): 2 images, 4 boxes, 3 classes" in out and "problems: none" in out


def test_writer_round_trip_and_refusals(tmp_path):
    source = load_dataset(write_yolo(tmp_path / "src", ITEMS, names=NAMES), split="train")
    config = write_yolo_split(source, tmp_path / "out", split="train")
    assert config == tmp_path / "out" / "data.yaml" and parse_config(config)["names"] == list(NAMES)
    back = load_dataset(tmp_path / "out", split="train")
    assert back.class_names == source.class_names and [r.name for r in back] == [r.name for r in source]
    for a, b in zip(source, back, strict=True):
        assert a.labels == b.labels and np.allclose(a.boxes, b.boxes, atol=1e-3)
        assert b.image_path.read_bytes() == a.image_path.read_bytes()
    with pytest.raises(DatasetError, match=r"labels/train: not empty|images/train: not empty"):
        write_yolo_split(source, tmp_path / "out", split="train")
    source.class_names = ["RBC", "WBC", "Platelets"]
    with pytest.raises(DatasetError, match=r"data\.yaml: names differ"):
        write_yolo_split(source, tmp_path / "out", split="val")


def test_data_convert_cli_writes_yolo_splits_into_one_folder(tmp_path, capsys):
    from bcedge.cli import main

    voc = write_voc(tmp_path / "voc", {"a": [("RBC", 8, 8, 24, 32)], "b": [("WBC", 0, 0, 64, 48)]},
                    splits={"train": ["a"], "val": ["b"]})
    for split in ("train", "val"):
        assert main(["data", "convert", str(voc), "--split", split, "--to", "yolo", str(tmp_path / "y")]) == 0
    assert "wrote" in capsys.readouterr().out
    config = parse_config(tmp_path / "y" / "data.yaml")
    assert config["train"] == "images/train" and config["val"] == "images/val"
    assert (tmp_path / "y" / "labels" / "train" / "a.txt").read_text() == "0 0.250000 0.416667 0.250000 0.500000\n"
    ds = load_dataset(tmp_path / "y", split="val")
    assert ds.class_names == ["RBC", "WBC"] and ds.images[0].boxes.tolist() == [[0, 0, 64, 48]]


@pytest.mark.skipif(not TXL_PBC.is_dir(), reason="TXL-PBC not present")
def test_txl_pbc_train_reads_quickly():
    start = time.perf_counter()
    ds = load_dataset(TXL_PBC, split="train")
    elapsed = time.perf_counter() - start
    assert len(ds) == 977 and ds.class_names == ["WBC", "RBC", "Platelets"]
    boxes = np.concatenate([r.boxes for r in ds])
    assert len(boxes) == 17853 and elapsed < 5
    assert all(r.width > 0 for r in ds) and boxes.min() >= 0
