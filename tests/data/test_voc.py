import pytest

from bcedge.data import DatasetError, load_dataset
from dataset_builders import BCCD, write_voc

ITEMS = {
    "a": [("WBC", 1, 2, 30, 40), ("RBC", 10, 10, 20, 20)],
    "b": [("RBC", 0.5, 1.5, 9.5, 8.25), ("Platelets", 3, 3, 6, 6), ("RBC", 30, 5, 50, 25)],
    "c": [("Platelets", 5, 5, 9, 9), ("WBC", 2, 2, 40, 40)],
}


def test_reads_sizes_boxes_labels_as_written(tmp_path):
    ds = load_dataset(write_voc(tmp_path, ITEMS))
    assert ds.format == "voc" and [r.name for r in ds] == ["a.png", "b.png", "c.png"]
    b = ds.images[1]
    assert (b.width, b.height) == (64, 48)
    assert b.boxes.tolist() == [[0.5, 1.5, 9.5, 8.25], [3, 3, 6, 6], [30, 5, 50, 25]]
    assert b.labels == ["RBC", "Platelets", "RBC"]
    assert b.image_path == tmp_path / "JPEGImages" / "b.png" and b.source.endswith("b.xml")


def test_class_order_is_count_then_name_over_all_splits(tmp_path):
    root = write_voc(tmp_path, ITEMS, splits={"val": ["c"]})
    # RBC 3, then Platelets 2 and WBC 2 tie -> by name; the split alone would not decide it
    assert load_dataset(root).class_names == ["RBC", "Platelets", "WBC"]
    val = load_dataset(root, split="val")
    assert len(val) == 1 and val.class_names == ["RBC", "Platelets", "WBC"]


def test_missing_split_names_file_and_known_splits(tmp_path):
    root = write_voc(tmp_path, ITEMS, splits={"train": ["a", "b"]})
    with pytest.raises(DatasetError, match=r"test\.txt.*splits here: train"):
        load_dataset(root, split="test")


def test_split_listing_unknown_id_is_an_error(tmp_path):
    root = write_voc(tmp_path, ITEMS, splits={"train": ["a", "zzz"]})
    with pytest.raises(DatasetError, match="zzz"):
        load_dataset(root, split="train")


def test_malformed_xml_names_file_and_line(tmp_path):
    root = write_voc(tmp_path, ITEMS)
    (root / "Annotations" / "b.xml").write_text("<annotation>\n<object><name>RBC</name>\n</annotation>")
    with pytest.raises(DatasetError, match=r"b\.xml: malformed XML at line 3"):
        load_dataset(root)


def test_missing_coordinate_names_object(tmp_path):
    root = write_voc(tmp_path, ITEMS)
    xml = root / "Annotations" / "c.xml"
    xml.write_text(xml.read_text().replace("<xmax>9</xmax>", ""))
    with pytest.raises(DatasetError, match=r"c\.xml: object 0 \(Platelets\): <xmax> is missing"):
        load_dataset(root)


def test_every_unreadable_annotation_file_is_named_in_one_error(tmp_path):
    root = write_voc(tmp_path, ITEMS)
    (root / "Annotations" / "b.xml").write_text("<annotation>\n<object><name>RBC</name>\n</annotation>")
    xml = root / "Annotations" / "c.xml"
    xml.write_text(xml.read_text().replace("<xmax>9</xmax>", "<xmax>abc</xmax>"))
    with pytest.raises(DatasetError, match=r"Annotations: 2 annotation file\(s\) cannot be read") as caught:
        load_dataset(root)
    assert "b.xml: malformed XML" in str(caught.value) and "c.xml: object 0 (Platelets): <xmax> is 'abc'" in str(caught.value)


def test_size_from_image_when_xml_has_none(tmp_path):
    root = write_voc(tmp_path, {"a": [("RBC", 1, 1, 5, 5)]}, size=(33, 21))
    xml = root / "Annotations" / "a.xml"
    xml.write_text(xml.read_text().replace("<width>33</width>", "<width>0</width>"))
    record = load_dataset(root).images[0]
    assert (record.width, record.height) == (33, 21)


@pytest.mark.skipif(not BCCD.is_dir(), reason="BCCD not present in shared/data")
def test_bccd_train_split():
    ds = load_dataset(BCCD, split="train")
    assert len(ds) == 205 and ds.class_names == ["RBC", "WBC", "Platelets"]
    assert all((r.width, r.height) == (640, 480) for r in ds)
