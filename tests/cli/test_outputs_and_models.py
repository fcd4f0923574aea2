"""What every command checks before its work: outputs that would overwrite an input or each other, a file given
where another kind was expected, and bundled model names taken wherever a model is."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bcedge.catalogue import resolve_model
from bcedge.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "bcedge" / "assets" / "sample_bccd"


@pytest.fixture
def model(tmp_path) -> Path:
    copy = tmp_path / "model.onnx"
    shutil.copy(resolve_model("default"), copy)
    return copy


@pytest.mark.parametrize("argv", [
    ["fp16", "{model}", "--out", "{model}"],
    ["quantize", "{model}", "--calib", "{tmp}/calib", "--out", "{model}"],
    ["build-engine", "{model}", "--out", "{model}"],
    ["data", "convert", "{tmp}/v.json", "--to", "coco", "{tmp}/v.json"],
])
def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path, model, capsys, argv):
    (tmp_path / "v.json").write_text("{}")
    before = {path: path.read_bytes() for path in (model, tmp_path / "v.json")}
    assert main([a.format(model=model, tmp=tmp_path) for a in argv]) == 2
    assert "is one of the inputs: it would be overwritten" in capsys.readouterr().err
    assert all(path.read_bytes() == data for path, data in before.items())


def test_live_refuses_outputs_on_its_video_or_on_each_other(tmp_path, capsys):
    from bcedge.testing.videos import squares_video

    video = squares_video(tmp_path / "run.avi", 3)
    before = video.read_bytes()
    assert main(["live", str(video), "--jsonl", str(video)]) == 2
    assert main(["live", str(video), "--jsonl", str(tmp_path / "x"), "--overlay-video", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "is one of the inputs" in err and "--jsonl and --overlay-video both name" in err
    assert video.read_bytes() == before and not (tmp_path / "x").exists()


def test_export_says_an_onnx_file_is_not_a_checkpoint(model, capsys):
    assert main(["export", str(model), "--out", str(model.with_name("again.onnx"))]) == 2
    assert "export takes a bcedge checkpoint (.pt); this is not one" in capsys.readouterr().err


def test_an_output_folder_where_a_file_goes_is_refused_first(tmp_path, capsys):
    (tmp_path / "outdir").mkdir()
    assert main(["fp16", "default", "--out", str(tmp_path / "outdir")]) == 2
    assert "is a folder, not a file" in capsys.readouterr().err


def test_a_counter_takes_the_tile_as_the_cli_writes_it():
    from bcedge.runtime.counter import Counter

    assert Counter.load("default", tile="512x384").tile == (512, 384)
    with pytest.raises(ValueError, match="tile 'big': expected 'auto', WIDTHxHEIGHT"):
        Counter.load("default", tile="big")
