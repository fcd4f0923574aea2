"""``bcedge count`` as a user runs it, with a model-free counter: every input treated fairly, outputs
checked before the work, same-named inputs kept apart, progress on terminals only."""
import csv
import io
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from bcedge.artifact import ModelMeta
from bcedge.backends.base import Backend
from bcedge.cli import main
from bcedge.runtime.counter import Counter

CLASSES = ["RBC", "WBC"]


class SquaresBackend(Backend):
    """'Detects' red squares (RBC) and blue squares (WBC) in each tile."""

    name = "squares"

    def __init__(self) -> None:  # no artifact file: the meta is given
        self.meta = ModelMeta(arch="squares", head="stub", backbone="stub", class_names=CLASSES, input_size=(64, 64),
                              max_object_size=8, default_score_threshold=0.5, nms_iou=0.5)
        self.device, self.precision, self.inference_seconds, self.choice = "cpu", "fp32", [], ""

    def _load(self):
        raise NotImplementedError

    def _infer(self, batch):
        boxes = np.zeros((len(batch), 16, 4), np.float32)
        scores = np.zeros((len(batch), 16, len(CLASSES)), np.float32)
        for b, chw in enumerate(batch):
            rgb = (chw.transpose(1, 2, 0) * 255).round().astype(int)
            slot = 0
            for cid, mask in enumerate(((rgb[..., 0] > 150) & (rgb[..., 2] < 100), (rgb[..., 2] > 150) & (rgb[..., 0] < 100))):
                _n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
                for x, y, w, h, _ in stats[1:]:
                    boxes[b, slot], scores[b, slot, cid] = (x, y, x + w, y + h), 0.9
                    slot += 1
        return boxes, scores


@pytest.fixture
def loads(monkeypatch):
    """Counter.load gives a squares counter; the list records the options of each load."""
    calls = []

    def load(model="default", backend="auto", device="auto", **options):
        calls.append(options)
        return Counter(SquaresBackend(), **options)

    monkeypatch.setattr(Counter, "load", staticmethod(load))
    return calls


def squares(path: Path, red: int, blue: int = 0, grey: bool = False) -> Path:
    image = np.full((48, 80, 3), 200, np.uint8)
    for i in range(red + blue):
        image[6:12, 4 + 9 * i: 10 + 9 * i] = (230, 20, 20) if i < red else (20, 20, 230)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if grey else image[:, :, ::-1])
    return path


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_missing_file_is_reported_and_skipped_and_the_others_counted(tmp_path, loads, capsys):
    good = squares(tmp_path / "good.png", 2, 1)
    (tmp_path / "empty").mkdir()
    code = main(["count", str(good), str(tmp_path / "missing.png"), str(tmp_path / "empty"),
                 "--json", str(tmp_path / "c.json"), "--quiet"])
    assert code == 1
    report = json.loads((tmp_path / "c.json").read_text())
    assert [(i["path"], i["counts"]) for i in report["images"]] == [(str(good), {"RBC": 2, "WBC": 1})]
    assert [f["path"] for f in report["failed"]] == [str(tmp_path / "missing.png"), str(tmp_path / "empty")]
    assert "missing.png: no such image file" in capsys.readouterr().err


def test_a_corrupt_or_unreadable_file_is_skipped_too(tmp_path, loads, capsys):
    good = squares(tmp_path / "good.png", 1)
    (tmp_path / "half.png").write_bytes(good.read_bytes()[:60])
    assert main(["count", str(tmp_path), "--csv", str(tmp_path / "out" / "c.csv"), "--quiet"]) == 1
    rows = csv_rows(tmp_path / "out" / "c.csv")
    assert [(r["path"], r["status"], r["RBC"]) for r in rows] == [(str(good), "done", "1"),
                                                                  (str(tmp_path / "half.png"), "skipped", "")]
    assert "half.png" in capsys.readouterr().err


def test_a_phone_photo_in_a_folder_is_reported_not_passed_over(tmp_path, loads, capsys):
    good = squares(tmp_path / "good.png", 1)
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    (tmp_path / "notes.txt").write_text("not an image, and not named like one: passed over")
    assert main(["count", str(tmp_path), "--json", str(tmp_path / "c.json"), "--quiet"]) == 1
    report = json.loads((tmp_path / "c.json").read_text())
    assert [i["path"] for i in report["images"]] == [str(good)]
    assert [f["path"] for f in report["failed"]] == [str(tmp_path / "IMG_0001.HEIC")]
    assert "IMG_0001.HEIC: a HEIC photo" in capsys.readouterr().err


def test_a_folder_s_images_are_found_by_their_bytes_not_only_their_names(tmp_path, loads, capsys):
    named = squares(tmp_path / "a.png", 1)
    (tmp_path / "b.jfif").write_bytes(named.read_bytes())     # an image by its bytes, under a name OpenCV uses too
    (tmp_path / "scan0001").write_bytes(named.read_bytes())   # a capture program's file without a suffix
    (tmp_path / "a.xml").write_text("<annotation/>")          # not an image: passed over
    assert main(["count", str(tmp_path), "--json", str(tmp_path / "out" / "c.json"), "--quiet"]) == 0
    report = json.loads((tmp_path / "out" / "c.json").read_text())
    assert [Path(i["path"]).name for i in report["images"]] == ["a.png", "b.jfif", "scan0001"]


def test_outputs_never_overwrite_an_input_or_each_other(tmp_path, loads, capsys):
    image = squares(tmp_path / "in" / "a.png", 1)
    before = image.read_bytes()
    for argv, says in ((["--csv", str(image)], "--csv .*a.png is one of the inputs"),
                       (["--json", str(tmp_path / "x"), "--csv", str(tmp_path / "x")], "--json and --csv both name"),
                       (["--overlay", str(tmp_path / "in")], "--overlay .* is a folder being counted")):
        assert main(["count", str(tmp_path / "in"), "--quiet", *argv]) == 2
        assert re.search(says, capsys.readouterr().err)
    assert image.read_bytes() == before and not (tmp_path / "x").exists() and loads == []


def test_a_symlink_loop_in_a_folder_is_skipped_like_a_missing_file(tmp_path, loads, capsys):
    good = squares(tmp_path / "good.png", 2)
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    assert main(["count", str(tmp_path), "--json", str(tmp_path / "out.json"), "--quiet"]) == 1
    report = json.loads((tmp_path / "out.json").read_text())
    assert [i["path"] for i in report["images"]] == [str(good)]
    assert "loop.png" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--json", "--csv", "--overlay"])
def test_output_paths_are_checked_before_any_counting(tmp_path, loads, capsys, option):
    squares(tmp_path / "a.png", 1)
    (tmp_path / "not-a-folder").write_text("")
    target = tmp_path / "not-a-folder" / "out"
    assert main(["count", str(tmp_path / "a.png"), option, str(target)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "tmp" not in err.replace(str(tmp_path), "")
    assert loads == []  # refused before the model was even loaded


def test_same_named_inputs_from_two_folders_keep_their_own_rows_and_overlays(tmp_path, loads, capsys):
    a = squares(tmp_path / "day1" / "x.png", 1)
    b = squares(tmp_path / "day2" / "x.png", 3)
    c = squares(tmp_path / "day2" / "y.png", 2)
    out = tmp_path / "out"
    assert main(["count", str(tmp_path / "day1"), str(tmp_path / "day2"), str(a), "--csv", str(out / "c.csv"),
                 "--json", str(out / "c.json"), "--overlay", str(out / "overlays"), "--quiet"]) == 0
    rows = csv_rows(out / "c.csv")
    assert [(r["path"], r["RBC"]) for r in rows] == [(str(a), "1"), (str(b), "3"), (str(c), "2")]  # a given twice: once
    overlays = sorted(p.relative_to(out / "overlays").as_posix() for p in (out / "overlays").rglob("*.png"))
    assert overlays == ["day1/x.png.overlay.png", "day2/x.png.overlay.png", "y.png.overlay.png"]
    report = json.loads((out / "c.json").read_text())
    assert [Path(i["overlay"]).name for i in report["images"]] == ["x.png.overlay.png", "x.png.overlay.png",
                                                                    "y.png.overlay.png"]
    table = capsys.readouterr().out
    assert str(a) in table and str(b) in table


def test_greyscale_inputs_are_counted_and_flagged_everywhere(tmp_path, loads, capsys):
    squares(tmp_path / "colour.png", 1)
    squares(tmp_path / "grey.png", 1, grey=True)
    assert main(["count", str(tmp_path), "--csv", str(tmp_path / "c.csv"), "--json", str(tmp_path / "c.json"),
                 "--quiet"]) == 0
    assert {Path(r["path"]).name: r["flags"] for r in csv_rows(tmp_path / "c.csv")} == {"colour.png": "",
                                                                                        "grey.png": "greyscale"}
    report = json.loads((tmp_path / "c.json").read_text())
    assert [i["flags"] for i in report["images"]] == [[], ["greyscale"]]
    assert "flagged: greyscale" in capsys.readouterr().out


def test_the_pixel_budget_is_an_option(tmp_path, loads, capsys):
    squares(tmp_path / "a.png", 1)
    assert main(["count", str(tmp_path / "a.png"), "--max-pixels", "1000", "--quiet"]) == 1
    assert "over the pixel budget" in capsys.readouterr().err and loads[-1]["max_pixels"] == 1000
    assert main(["count", str(tmp_path / "a.png"), "--max-pixels", "0", "--quiet"]) == 0


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_batch_size_below_one_is_refused_by_the_parser(tmp_path, loads, capsys, value):
    with pytest.raises(SystemExit) as caught:
        main(["count", str(tmp_path), "--batch-size", value])
    assert caught.value.code == 2 and "--batch-size" in capsys.readouterr().err and loads == []


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream, quiet, shown", [(Terminal, False, True), (Terminal, True, False),
                                                  (io.StringIO, False, False)])
def test_progress_per_image_and_tile_on_a_terminal_only(tmp_path, loads, monkeypatch, stream, quiet, shown):
    import sys

    big = np.full((300, 400, 3), 200, np.uint8)
    cv2.imwrite(str(tmp_path / "big.png"), big)
    squares(tmp_path / "small.png", 1)
    err = stream()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["count", str(tmp_path)] + (["--quiet"] if quiet else [])) == 0
    text = err.getvalue()
    assert ("2/2" in text and "image" in text and "tile" in text) == shown
    assert (text == "") == (not shown)
