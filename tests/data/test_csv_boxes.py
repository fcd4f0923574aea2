import numpy as np
import pytest

from bcedge.data import DatasetError, load_dataset
from dataset_builders import write_image

ROWS = [("a.png", 10, 5, 30, 25, "RBC"), ("a.png", 0, 0, 50, 40, "WBC"), ("b.png", 20, 10, 25, 20, "RBC")]
SIZES = {"a.png": (50, 40), "b.png": (100, 20)}


def _write(folder, name, header, rows):
    for image, (w, h) in SIZES.items():
        write_image(folder / "images" / image, w, h)
    path = folder / name
    path.write_text(header + "\n" + "\n".join(",".join(str(v) for v in row) for row in rows) + "\n")
    return path


def test_pixels_and_normalised_give_the_same_boxes(tmp_path):
    px_rows = [("images/" + n, *rest) for n, *rest in ROWS]
    norm_rows = [("images/" + n, x0 / SIZES[n][0], y0 / SIZES[n][1], x1 / SIZES[n][0], y1 / SIZES[n][1], label)
                 for n, x0, y0, x1, y1, label in ROWS]
    pixels = load_dataset(_write(tmp_path / "px", "px.csv", "image,xmin,ymin,xmax,ymax,label", px_rows))
    normalised = load_dataset(_write(tmp_path / "n", "n.csv", "Filename,X_Min,y_min,x_max,y_max,Class", norm_rows))
    assert any("in pixels" in n for n in pixels.notes) and any("normalised" in n for n in normalised.notes)
    assert pixels.images[0].boxes.tolist() == [[10, 5, 30, 25], [0, 0, 50, 40]]
    assert pixels.class_names == normalised.class_names == ["RBC", "WBC"]
    for a, b in zip(pixels, normalised, strict=True):
        assert (a.width, a.height) == (b.width, b.height) == SIZES[a.name]
        assert np.allclose(a.boxes, b.boxes, atol=1e-4) and a.labels == b.labels


def test_paths_relative_to_csv_folder_and_images_without_boxes(tmp_path):
    path = _write(tmp_path, "boxes.csv", "image,xmin,ymin,xmax,ymax,label", [])
    path.write_text("image;xmin;ymin;xmax;ymax;label\nimages/a.png;1;2;3;4;RBC\nimages/b.png;;;;;\n")  # ; separated
    ds = load_dataset(path)
    assert [r.image_path for r in ds] == [tmp_path / "images" / "a.png", tmp_path / "images" / "b.png"]
    assert len(ds.images[1].boxes) == 0 and (ds.images[1].width, ds.images[1].height) == (100, 20)
    assert ds.images[0].boxes.tolist() == [[1, 2, 3, 4]]


def test_missing_column_names_file_and_columns(tmp_path):
    path = _write(tmp_path, "boxes.csv", "image,xmin,ymin,xmax,ymax,colour", [("images/a.png", 1, 2, 3, 4, "x")])
    with pytest.raises(DatasetError, match=r"boxes\.csv: header lacks column\(s\) label"):
        load_dataset(path, fmt="csv")


def test_bad_number_names_line(tmp_path):
    path = _write(tmp_path, "boxes.csv", "image,xmin,ymin,xmax,ymax,label",
                  [("images/a.png", 1, 2, 3, 4, "RBC"), ("images/a.png", 1, "two", 3, 4, "RBC"),
                   ("images/a.png", 1, 2, "x", 4, "RBC")])
    with pytest.raises(DatasetError, match=r"boxes\.csv: 2 row\(s\) cannot be read") as caught:
        load_dataset(path)
    assert "line 3: ymin 'two' is not a number" in str(caught.value) and "line 4: xmax 'x'" in str(caught.value)
