"""Synthetic smear generator: determinism, strip independence, exact boxes, COCO output, writers, CLI."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from bcedge.atomic import is_temp
from bcedge.data.synth import (
    PLATELETS, RBC, RING, WBC, Layout, SmearConfig, SmearStyle, generate_smear, make_layout, render_layout,
)

SMALL = dict(scale=0.4, wbc_per_rbc=0.08, platelets_per_rbc=0.1, parasites=True, parasitemia=0.3)


def test_same_seed_gives_identical_pixels_and_labels():
    a = generate_smear(240, 180, seed=7, **SMALL)
    b = generate_smear(240, 180, seed=7, **SMALL)
    assert a.pixels.shape == (180, 240, 3) and a.pixels.dtype == np.uint8
    assert np.array_equal(a.pixels, b.pixels)
    assert json.dumps(a.coco) == json.dumps(b.coco)
    assert len(a.coco["annotations"]) > 10


def test_different_seeds_differ():
    a = generate_smear(240, 180, seed=1, **SMALL)
    b = generate_smear(240, 180, seed=2, **SMALL)
    assert np.mean(a.pixels != b.pixels) > 0.3
    assert a.coco["annotations"][0]["bbox"] != b.coco["annotations"][0]["bbox"]
    assert a.layout.style != b.layout.style  # background, stain, optics vary with the seed


@pytest.mark.parametrize("seed", [0, 5])
def test_strip_height_does_not_change_pixels_or_labels(seed):
    layout = make_layout(211, 157, seed, SmearConfig(**SMALL))
    assert layout.style.blur_sigma > 0 and layout.style.noise_sigma > 0
    whole, truth = render_layout(layout, strip_rows=157)
    for rows in (1, 16, 50):
        pixels, strip_truth = render_layout(layout, strip_rows=rows)
        assert np.array_equal(pixels, whole), f"strip height {rows} changed pixels"
        assert strip_truth == truth


def test_labels_file_does_not_depend_on_strip_height_and_has_no_ring_class_by_default(tmp_path):
    a = generate_smear(150, 110, seed=6, out=tmp_path / "a.png", strip_rows=13, scale=0.4)
    b = generate_smear(150, 110, seed=6, out=tmp_path / "b.png", scale=0.4)
    assert a.labels_path.read_text().replace("a.png", "b.png") == b.labels_path.read_text()
    assert np.array_equal(cv2.imread(str(tmp_path / "a.png")), cv2.imread(str(tmp_path / "b.png")))
    again = generate_smear(150, 110, seed=6, out=tmp_path / "c.png", strip_rows=13, scale=0.4)
    assert again.image_path.read_bytes() == a.image_path.read_bytes()  # same strip height: same file bytes
    assert [c["name"] for c in b.coco["categories"]] == ["RBC", "WBC", "Platelets"]


def _alone(cell, size=(160, 160), **style) -> tuple[np.ndarray, list]:
    """Render one cell on a plain background (no noise, blur, vignetting)."""
    config = SmearConfig(style=SmearStyle.plain(**style), parasites=True)
    layout = Layout(size[0], size[1], 0, config, config.style, [cell])
    return render_layout(layout)


def _cells_of_each_kind(scale: float = 0.6) -> list:
    layout = make_layout(900, 700, 3, SmearConfig(scale=scale, wbc_per_rbc=0.1, platelets_per_rbc=0.2,
                                                  parasites=True, parasitemia=0.5))
    picked = []
    for kind in (RBC, WBC, PLATELETS, RING):
        picked += [c for c in layout.cells if c.kind == kind][:3]
    assert {c.kind for c in picked} == {RBC, WBC, PLATELETS, RING}
    return picked


def _recentre(cell, x: float, y: float):
    from dataclasses import replace

    dx, dy = x - cell.blobs[0].cx, y - cell.blobs[0].cy
    blobs = tuple(replace(b, cx=b.cx + dx, cy=b.cy + dy) for b in cell.blobs)
    look = cell.look
    if hasattr(look, "lobes"):
        look = replace(look, lobes=tuple(replace(b, cx=b.cx + dx, cy=b.cy + dy) for b in look.lobes))
    return replace(cell, blobs=blobs, look=look)


@pytest.mark.parametrize("kind_index", range(4))
def test_box_is_tight_around_an_isolated_rendered_cell(kind_index):
    for cell in _cells_of_each_kind()[kind_index * 3:(kind_index + 1) * 3]:
        cell = _recentre(cell, 80.3, 77.6)
        pixels, truth = _alone(cell)
        assert len(truth) == 1
        bg = np.rint(np.asarray(SmearStyle().background)).astype(np.uint8)
        changed = np.any(pixels != bg, axis=2)
        ys, xs = np.nonzero(changed)
        seen = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        box = np.array(truth[0].box)
        assert np.all(np.abs(seen - box) <= 1), (cell.kind, seen, box)
        x0, y0, x1, y1 = box
        if cell.kind != RING:  # a ring's mask is filled; its pale inside is not painted
            assert changed[y0:y1, x0:x1].sum() >= truth[0].area  # every labelled pixel is painted


def test_box_is_clipped_to_the_image_and_invisible_cells_are_dropped():
    cell = _recentre(_cells_of_each_kind()[0], 5.0, 150.0)  # RBC half outside the left and bottom edges
    pixels, truth = _alone(cell)
    x0, y0, x1, y1 = truth[0].box
    assert x0 == 0 and y1 == 160 and x1 > 5 and y0 < 150
    far = _recentre(cell, -200.0, 80.0)
    _, none = _alone(far)
    assert none == []


def _inside_polygon(pts: np.ndarray, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """Even-odd test of pixel centres (x + 0.5, y + 0.5) of a w x h window at (x0, y0): COCO's convention."""
    px = (np.arange(x0, x0 + w) + 0.5)[None, :]
    py = (np.arange(y0, y0 + h) + 0.5)[:, None]
    inside = np.zeros((h, w), bool)
    for (xa, ya), (xb, yb) in zip(pts, np.roll(pts, -1, axis=0)):
        if ya == yb:
            continue
        crosses = (ya > py) != (yb > py)
        x_at = xa + (py - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (px < x_at)
    return inside


def test_coco_file_categories_boxes_and_masks(tmp_path):
    out = tmp_path / "smear.png"
    result = generate_smear(320, 240, seed=4, out=out, **SMALL)
    labels = tmp_path / "smear.json"
    assert result.labels_path == labels and labels.is_file() and out.is_file()
    assert not [p for p in tmp_path.iterdir() if is_temp(p)]
    coco = json.loads(labels.read_text())
    assert [(c["id"], c["name"]) for c in coco["categories"]] == [(1, "RBC"), (2, "WBC"), (3, "Platelets"), (4, "ring")]
    assert coco["images"] == [{"id": 1, "file_name": "smear.png", "width": 320, "height": 240}]
    anns = coco["annotations"]
    assert {a["category_id"] for a in anns} >= {1, 4}
    assert [a["id"] for a in anns] == list(range(1, len(anns) + 1))
    for a in anns:
        x, y, w, h = a["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 320 and y + h <= 240 and w > 0 and h > 0
        assert 0 < a["area"] <= w * h
        mask = np.zeros((h + 4, w + 4), bool)  # the box and 2 pixels around it
        for poly in a["segmentation"]:
            pts = np.asarray(poly).reshape(-1, 2)
            assert x <= pts[:, 0].min() and pts[:, 0].max() <= x + w
            assert y <= pts[:, 1].min() and pts[:, 1].max() <= y + h
            mask |= _inside_polygon(pts, x - 2, y - 2, w + 4, h + 4)
        assert not mask[:2].any() and not mask[-2:].any() and not mask[:, :2].any() and not mask[:, -2:].any()
        assert abs(int(mask.sum()) - a["area"]) <= 0.1 * a["area"] + 3, a
        if a["category_id"] == 4:
            host = anns[a["host_id"] - 1]
            assert host["category_id"] == 1  # rings sit in RBCs
        else:
            assert 0.0 <= a["overlap"] <= 1.0
    assert any(a.get("overlap", 0) > 0 for a in anns)  # RBCs touch and overlap


def test_file_output_matches_in_memory_pixels(tmp_path):
    mem = generate_smear(200, 150, seed=9, **SMALL)
    png = generate_smear(200, 150, seed=9, out=tmp_path / "a.png", **SMALL)
    tif = generate_smear(200, 150, seed=9, out=tmp_path / "a.tif", write_options={"tile": 64}, **SMALL)
    from PIL import Image
    import tifffile

    assert np.array_equal(cv2.imread(str(tmp_path / "a.png"))[:, :, ::-1], mem.pixels)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), mem.pixels)
    assert np.array_equal(tifffile.imread(tmp_path / "a.tif"), mem.pixels)
    assert png.coco["annotations"] == mem.coco["annotations"] == tif.coco["annotations"]
    jpg = generate_smear(200, 150, seed=9, out=tmp_path / "a.jpg", **SMALL)
    decoded = cv2.imread(str(jpg.image_path))[:, :, ::-1].astype(int)
    assert decoded.shape == mem.pixels.shape and np.abs(decoded - mem.pixels).mean() < 6  # lossy, noisy


def test_tiff_whose_last_tile_row_ends_the_image(tmp_path):
    mem = generate_smear(96, 128, seed=1, scale=0.3)
    tif = generate_smear(96, 128, seed=1, scale=0.3, out=tmp_path / "b.tiff", write_options={"tile": 64})
    import tifffile

    assert np.array_equal(tifffile.imread(tif.image_path), mem.pixels)
    assert tif.coco["annotations"] == mem.coco["annotations"]


def test_bad_outputs_are_refused_before_rendering(tmp_path):
    with pytest.raises(ValueError, match="JPEG needs the whole"):
        generate_smear(9000, 9000, out=tmp_path / "big.jpg")
    with pytest.raises(ValueError, match="cannot write smears as '.bmp'"):
        generate_smear(64, 64, out=tmp_path / "x.bmp")
    with pytest.raises(ValueError, match="too large to return in memory"):
        generate_smear(9000, 9000)
    with pytest.raises(ValueError, match="unknown smear option"):
        generate_smear(64, 64, desnity=0.5)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        generate_smear(64, 64, out=tmp_path / "missing" / "x.png")
    with pytest.raises(ValueError, match="not \\['level'\\]"):
        generate_smear(64, 64, out=tmp_path / "x.png", write_options={"level": 1})
    assert list(tmp_path.iterdir()) == []


def test_density_and_scale_change_the_cell_count():
    sparse = make_layout(600, 400, 0, SmearConfig(density=0.3)).counts()[RBC]
    dense = make_layout(600, 400, 0, SmearConfig(density=0.8)).counts()[RBC]
    small = make_layout(600, 400, 0, SmearConfig(density=0.8, scale=0.5)).counts()[RBC]
    assert sparse < dense < small
    assert 2.5 < small / dense < 5.0  # 4x as many at half the scale, less what does not fit


def test_annotation_bridge_and_counts():
    result = generate_smear(240, 180, seed=3, **SMALL)
    ann = result.annotation()
    assert len(ann.boxes) == len(result.coco["annotations"]) == sum(result.counts.values())
    assert set(ann.labels) <= {RBC, WBC, PLATELETS, RING}
    assert np.all(ann.boxes[:, 2:] > ann.boxes[:, :2])
    assert result.counts[RBC] == ann.labels.count(RBC)


def test_cli_writes_image_and_labels(tmp_path, capsys):
    from bcedge.cli import main

    out = tmp_path / "s.png"
    rc = main(["synth", "--size", "160x120", "--seed", "2", "--out", str(out), "--parasites", "--density", "0.9",
               "--scale", "0.4"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "RBC" in printed and "s.json" in printed
    coco = json.loads((tmp_path / "s.json").read_text())
    assert coco["info"]["config"]["density"] == 0.9 and coco["info"]["config"]["parasites"] is True
    assert cv2.imread(str(out)).shape == (120, 160, 3)
    assert main(["synth", "--size", "160by120", "--out", str(out)]) == 2
    assert "160by120" in capsys.readouterr().err
