import json
import sys

from bcedge.cli import main
from bcedge.data import load_dataset, sample_dataset_path


def test_data_stats_prints_and_writes_json(tmp_path, capsys):
    out = tmp_path / "stats.json"
    assert main(["data", "stats", str(sample_dataset_path()), "--split", "val", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 images" in text and "BloodImage_00338.xml" in text
    assert json.loads(out.read_text())["per_class"]["RBC"]["boxes"] == 42


def test_data_convert_to_coco(tmp_path, capsys):
    out = tmp_path / "val.json"
    args = ["data", "convert", str(sample_dataset_path()), "--split", "val", "--to", "coco", str(out), "--policy", "drop"]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    back = load_dataset(out)
    assert len(back) == 3 and back.class_names == ["RBC", "WBC", "Platelets"]
    assert sum(len(r.boxes) for r in back) == 46  # 47 less the zero-size box


def test_bad_path_is_a_clear_error(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "missing")]) == 2
    assert "missing: no such file or directory" in capsys.readouterr().err


def test_a_missing_optional_dependency_names_its_extra(monkeypatch, capsys):
    import types

    def zoo():
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setitem(sys.modules, "bcedge.models", types.SimpleNamespace(zoo=zoo))
    assert main(["zoo"]) == 2
    assert "zoo needs torch, which is not installed: pip install 'bcedge[train]'" in capsys.readouterr().err


def test_an_unknown_model_name_lists_the_bundled_ones(tmp_path, capsys):
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    assert main(["count", str(image), "--model", "default-int9"]) == 2
    assert "default-int9: no such model file (bundled models: default, default-int8)" in capsys.readouterr().err
