import json

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
