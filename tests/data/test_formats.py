import pytest

from bcedge.data import READERS, DatasetError, detect_format, load_dataset, sample_dataset_path
from bcedge.data.formats import reader
from dataset_builders import write_json, write_voc


def test_every_registered_reader_has_the_interface():
    for name in READERS:
        module = reader(name)
        assert callable(module.can_read) and callable(module.read), name


def test_sniffs_each_format(tmp_path):
    write_voc(tmp_path / "voc", {"a": [("RBC", 1, 1, 5, 5)]})
    write_json(tmp_path / "coco.json", {"images": [], "annotations": [], "categories": []})
    write_json(tmp_path / "bbbc" / "training.json", [{"image": {"pathname": "/a.png"}, "objects": []}])
    (tmp_path / "b.csv").write_text("image,xmin,ymin,xmax,ymax,label\n")
    assert detect_format(tmp_path / "voc") == "voc"
    assert detect_format(tmp_path / "coco.json") == "coco"
    assert detect_format(tmp_path / "bbbc") == "bbbc041"
    assert detect_format(tmp_path / "b.csv") == "csv"


def test_wrong_path_and_unrecognised_folder_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match=f"{tmp_path}: not a recognised dataset"):
        load_dataset(tmp_path)


def test_ambiguous_folder_asks_for_a_format(tmp_path):
    write_json(tmp_path / "coco.json", {"images": [], "annotations": [], "categories": []})
    (tmp_path / "b.csv").write_text("image,xmin,ymin,xmax,ymax,label\n")
    with pytest.raises(DatasetError, match="could be read as coco or csv"):
        load_dataset(tmp_path)
    assert load_dataset(tmp_path, fmt="coco").format == "coco"
    with pytest.raises(DatasetError, match="unknown dataset format 'darknet'"):
        load_dataset(tmp_path, fmt="darknet")


def test_bundled_sample_reads():
    ds = load_dataset(sample_dataset_path(), split="val")
    assert len(ds) == 3 and ds.class_names == ["RBC", "WBC", "Platelets"]
    assert all(r.image_path.is_file() for r in ds)
    assert (sample_dataset_path() / "LICENSE").is_file()
