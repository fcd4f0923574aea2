"""Several datasets as one: class names matched across sources, source groups, balanced sampling,
the cell-size scale of annotated images and near-copies between datasets."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bcedge.data.annotations import Dataset, ImageAnnotation
from bcedge.data.cellsize import image_cell_sizes, scale_summary, whole_cell_diameters
from bcedge.data.formats import DatasetError
from bcedge.data.multisource import SourceSpec, group_weights, load_sources, read_sources_file
from bcedge.data.nearcopies import near_copies

from dataset_builders import write_voc, write_yolo


@pytest.fixture
def two_sources(tmp_path):
    voc = write_voc(tmp_path / "voc", {"a": [("RBC", 1, 1, 20, 20), ("wbc", 30, 10, 60, 40)],
                                       "b": [("Platelets", 5, 5, 12, 12)]})
    yolo = write_yolo(tmp_path / "yolo", {"train": {"x": ["1 0.5 0.5 0.2 0.2"], "y": ["0 0.3 0.3 0.2 0.2", "2 0.7 0.7 0.1 0.1"]}},
                      names=("WBC", "RBC", "Platelets"))
    return voc, yolo


def test_classes_map_by_name_across_sources(two_sources):
    voc, yolo = two_sources
    data = load_sources([SourceSpec(voc), SourceSpec(yolo, "train")], ["RBC", "WBC", "Platelets"])
    assert data.class_names == ["RBC", "WBC", "Platelets"]
    labels = sorted(label for r in data.images for label in r.labels)
    assert labels == ["Platelets", "Platelets", "RBC", "RBC", "WBC", "WBC"]   # "wbc" spelled as the list says
    assert {r.group for r in data.images} == {"voc", "yolo"}


def test_common_names_of_a_cell_merge_across_sources(tmp_path, two_sources):
    _, yolo = two_sources
    lab = write_voc(tmp_path / "lab", {"c": [("Erythrocyte", 1, 1, 20, 20), ("neutrophil", 30, 10, 60, 40)]})
    data = load_sources([SourceSpec(yolo, "train"), SourceSpec(lab)])   # classes from the first source, extended
    assert data.class_names == ["WBC", "RBC", "Platelets"]
    assert sorted(label for r in data.images if r.group == "lab" for label in r.labels) == ["RBC", "WBC"]


def test_a_class_the_training_list_lacks_is_named_with_its_source(two_sources):
    voc, _ = two_sources
    with pytest.raises(DatasetError, match=r"voc.*\['Platelets'\].*not among"):
        load_sources([SourceSpec(voc)], ["RBC", "WBC"])


def test_size_groups_merge_nearly_equal_frames_and_sampling_balances_groups(tmp_path):
    records = [ImageAnnotation(tmp_path / f"{i}.png", w, h, np.zeros((0, 4)), [])
               for i, (w, h) in enumerate([(360, 363)] * 6 + [(366, 369)] * 2 + [(640, 480)] * 2)]
    data = Dataset(records, ["RBC"])

    def loader(path, split):
        return Dataset(list(records), ["RBC"])

    merged = load_sources([SourceSpec(tmp_path / "txl", group_by="size")], ["RBC"], loader=loader)
    assert sorted({r.group for r in merged.images}) == ["txl/360x363", "txl/640x480"]
    weights = group_weights(merged)
    share = {g: sum(weights[r.group] for r in merged.images if r.group == g) for g in weights}
    assert share["txl/360x363"] == pytest.approx(share["txl/640x480"])
    assert len(data) == 10


def test_sources_file(tmp_path, two_sources):
    voc, yolo = two_sources
    listing = tmp_path / "sources.yaml"
    listing.write_text(f"classes: [RBC, WBC, Platelets]\nsources:\n  - {{path: {voc}}}\n"
                       f"  - {{path: {yolo}, split: train, group_by: size}}\n")
    specs, classes = read_sources_file(listing)
    assert classes == ["RBC", "WBC", "Platelets"] and specs[1].split == "train" and specs[1].group_by == "size"
    listing.write_text("sources:\n  - {split: train}\n")
    with pytest.raises(DatasetError, match="needs a 'path'"):
        read_sources_file(listing)


def test_cell_sizes_leave_out_cells_cut_by_the_edge(tmp_path):
    whole = [[10, 10, 30, 30], [40, 40, 62, 62], [70, 10, 88, 30]]
    cut = [[0, 50, 8, 70], [90, 90, 100, 100]]
    record = ImageAnnotation(tmp_path / "a.png", 100, 100, np.array(whole + cut, np.float32), ["RBC"] * 5)
    assert sorted(whole_cell_diameters(record).tolist()) == [19.0, 20.0, 22.0]
    sparse = ImageAnnotation(tmp_path / "b.png", 100, 100, np.array([[10, 10, 50, 50]], np.float32), ["RBC"], group="g")
    record.group = "g"
    sizes = image_cell_sizes(Dataset([record, sparse], ["RBC"]))
    assert sizes[0] == pytest.approx(20.0)
    assert sizes[1] == pytest.approx(21.0)   # one whole cell is too few: its group's median (19, 20, 22, 40)
    assert scale_summary(Dataset([record], ["RBC"]))["median_px"] == 20.0


def test_near_copies_find_a_flipped_reencoded_frame_but_not_another_smear(tmp_path):
    rng = np.random.default_rng(0)
    frames = [cv2.GaussianBlur((rng.random((120, 160, 3)) * 255).astype(np.uint8), (0, 0), 4) for _ in range(2)]
    paths = []
    for i, frame in enumerate(frames):
        paths.append(tmp_path / f"ref{i}.png")
        cv2.imwrite(str(paths[-1]), frame)
    copy = tmp_path / "copy.jpg"
    cv2.imwrite(str(copy), cv2.resize(frames[0][:, ::-1], (104, 78)), [cv2.IMWRITE_JPEG_QUALITY, 70])
    other = tmp_path / "other.png"
    cv2.imwrite(str(other), cv2.GaussianBlur((rng.random((120, 160, 3)) * 255).astype(np.uint8), (0, 0), 4))
    found = near_copies([copy, other], paths)
    assert found == {copy: paths[0]}
