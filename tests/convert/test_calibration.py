"""Calibration sets: tiles cut like the runtime cuts them, rare classes kept, reproducible, verified."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bcedge.artifact import ModelMeta
from bcedge.convert.calibration import (DEFAULT_PAD_VALUE, CalibrationError, CalibrationSet, Candidate, TileSpec,
                                        build_calibration_set, candidate_tiles, select_tiles)
from bcedge.data import load_dataset
from bcedge.imageio import read_image

from convert_helpers import SIZE, write_tiny_voc


def test_candidates_cover_every_image_with_runtime_tiles(tiny_voc):
    data = load_dataset(tiny_voc)
    candidates = candidate_tiles(data, SIZE, overlap=8)
    # 160x128 images, 64x64 tiles overlapping by >= 8: 3 columns x 3 rows (last ones shifted inside)
    assert len(candidates) == 6 * 9
    assert all(c.box[2] - c.box[0] == 64 and c.box[3] - c.box[1] == 64 and c.pad == (0, 0) for c in candidates)
    platelet_tiles = [c for c in candidates if "Platelets" in c.classes]
    assert platelet_tiles and all(c.image == 5 for c in platelet_tiles)


def test_selection_keeps_rare_classes():
    cands = [Candidate(i, (0, 0, 1, 1), (0, 0), {"RBC": 3}) for i in range(200)]
    cands[137] = Candidate(137, (0, 0, 1, 1), (0, 0), {"RBC": 1, "Platelets": 1})
    cands[42] = Candidate(42, (0, 0, 1, 1), (0, 0), {"WBC": 1})
    for seed in range(5):
        chosen = select_tiles(cands, ["RBC", "WBC", "Platelets"], count=12, seed=seed)
        assert len(chosen) == 12 and 137 in chosen and 42 in chosen and chosen == sorted(chosen)
    assert select_tiles(cands, ["RBC"], count=500) == list(range(200))
    assert select_tiles(cands, ["RBC", "WBC", "Platelets"], 12, seed=1) == select_tiles(cands, ["RBC", "WBC", "Platelets"], 12, seed=1)
    assert select_tiles(cands, ["RBC", "WBC", "Platelets"], 12, seed=1) != select_tiles(cands, ["RBC", "WBC", "Platelets"], 12, seed=2)


def test_build_writes_tiles_and_manifest(tiny_voc, calib_dir):
    calib = CalibrationSet.load(calib_dir, verify=True)
    m = calib.manifest
    assert len(calib) == m["count"] == 16 and m["requested"] == 16 and m["candidates"] == 54
    assert calib.tiles.shape == (16, 64, 64, 3) and calib.tiles.dtype == np.uint8
    assert m["class_tiles"]["Platelets"] >= 1 and m["class_tiles"]["WBC"] >= 1
    first = m["tiles"][0]
    source = tiny_voc / m["sources"][first["source"]]["path"]
    x0, y0, x1, y1 = first["box"]
    assert np.array_equal(calib.tiles[0], read_image(source)[y0:y1, x0:x1])
    assert len(m["tiles_sha256"]) == 64 and all(len(s["sha256"]) == 64 for s in m["sources"])
    batches = list(calib.batches(batch_size=5))
    assert [b.shape for b in batches] == [(5, 3, 64, 64)] * 3 + [(1, 3, 64, 64)]
    assert batches[0].dtype == np.float32 and np.allclose(batches[0][0], calib.tiles[0].transpose(2, 0, 1) / 255)
    assert [b.shape[0] for b in calib.batches(4, limit=6, start=2)] == [4]
    assert "16 tiles 64x64" in calib.summary()


def test_rebuild_is_byte_identical_and_padding_matches_the_runtime(tmp_path):
    root = write_tiny_voc(tmp_path / "voc", images=3, size=(50, 40))
    data = load_dataset(root)
    a = build_calibration_set(data, tmp_path / "a", TileSpec(SIZE), count=2, seed=7)
    b = build_calibration_set(data, tmp_path / "b", TileSpec(SIZE), count=2, seed=7)
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    assert (tmp_path / "a" / "tiles.npy").read_bytes() == (tmp_path / "b" / "tiles.npy").read_bytes()
    # images smaller than a tile: padded right/bottom with the normalisation mean's grey, like the runtime
    grey = ModelMeta(arch="a_b", head="a", backbone="b", class_names=["x"], input_size=SIZE).pad_value
    assert a.manifest["tiles"][0]["pad"] == [14, 24] and a.manifest["pad_value"] == DEFAULT_PAD_VALUE == grey
    assert (a.tiles[0][40:] == grey).all() and (a.tiles[0][:, 50:] == grey).all() and (a.tiles[0][:40, :50] != grey).any()
    assert b.manifest["count"] == 2


def test_tile_spec_follows_the_counter():
    meta = ModelMeta(arch="fcos_x", head="fcos", backbone="x", class_names=["RBC"], input_size=(768, 768),
                     mean=(0.5, 0.5, 0.5), max_object_size=250.0)
    spec = TileSpec.for_model(meta)
    assert spec.size == (768, 768) and spec.overlap == 252 and spec.pad_value == 128   # choose_overlap: size + 2 px
    meta.max_object_size = 0.0
    assert TileSpec.for_model(meta).overlap == 192                                   # a quarter tile
    assert TileSpec.for_model(meta, overlap=10).overlap == 10


def test_errors_name_the_problem(tmp_path, calib_dir):
    with pytest.raises(CalibrationError, match="manifest.json: missing"):
        CalibrationSet.load(tmp_path)
    calib = CalibrationSet.load(calib_dir)
    with pytest.raises(CalibrationError, match="tiles are 64x64 but m.onnx takes 640x480"):
        calib.check_model((640, 480), "m.onnx")
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    tiles = np.array(calib.tiles)
    tiles[3, 5, 5, 0] ^= 1
    np.save(tampered / "tiles.npy", tiles)
    (tampered / "manifest.json").write_text(json.dumps(calib.manifest))
    with pytest.raises(CalibrationError, match="do not match the manifest's sha256"):
        CalibrationSet.load(tampered, verify=True)
    np.save(tampered / "tiles.npy", tiles[:4])
    with pytest.raises(CalibrationError, match="rebuild the set"):
        CalibrationSet.load(tampered)
    with pytest.raises(CalibrationError, match="count must be positive"):
        build_calibration_set(load_dataset(write_tiny_voc(tmp_path / "voc2", images=1)), tmp_path / "x", TileSpec(SIZE), count=0)


def test_a_scaled_set_can_cover_the_runtimes_scale_tolerance(tiny_voc, tmp_path):
    from bcedge.convert.calibration import build_scaled_calibration_set

    data = load_dataset(tiny_voc)
    exact = build_scaled_calibration_set(data, tmp_path / "exact", cell_px=20, size=SIZE, count=8)
    spread = build_scaled_calibration_set(data, tmp_path / "spread", cell_px=20, size=SIZE, count=8, jitter=0.15)
    again = build_scaled_calibration_set(data, tmp_path / "again", cell_px=20, size=SIZE, count=8, jitter=0.15)
    assert exact.manifest["scale_jitter"] == 0 and spread.manifest["scale_jitter"] == 0.15
    assert exact.manifest["resampled_to_cell_px"] == spread.manifest["resampled_to_cell_px"] == 20
    assert not np.array_equal(exact.tiles, spread.tiles)          # other scales, other pixels
    assert np.array_equal(spread.tiles, again.tiles)              # drawn from the seed: reproducible
    with pytest.raises(CalibrationError, match="scale jitter"):
        build_scaled_calibration_set(data, tmp_path / "bad", cell_px=20, size=SIZE, count=8, jitter=1.5)
