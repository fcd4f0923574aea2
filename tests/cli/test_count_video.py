"""``bcedge count VIDEO``: a video is counted frame by frame, beside images, into the one report."""
import json

import cv2
import pytest
from test_count_cli import (
    SquaresBackend,  # same folder: the real Counter around a model-free backend
)

from bcedge.cli import main
from bcedge.runtime.counter import Counter
from bcedge.testing.videos import squares_counts, squares_frame, squares_video


@pytest.fixture(autouse=True)
def squares_counter(monkeypatch):
    monkeypatch.setattr(Counter, "load", staticmethod(lambda model="default", backend="auto", device="auto", **options:
                                                      Counter(SquaresBackend(), **options)))


def test_a_video_is_counted_frame_by_frame_into_the_report_and_json_lines(tmp_path, capsys):
    video = squares_video(tmp_path / "run.avi", 5)
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), squares_frame(7)[:, :, ::-1])
    code = main(["count", str(still), str(video), "--json", str(tmp_path / "r.json"), "--jsonl",
                 str(tmp_path / "f.jsonl"), "--overlay-video", str(tmp_path / "o.avi"), "--quiet"])
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    paths = [image["path"] for image in report["images"]]
    assert paths[0].endswith("still.png") and [p.rsplit("#", 1)[1] for p in paths[1:]] == ["0", "1", "2", "3", "4"]
    assert [image["counts"]["RBC"] for image in report["images"][1:]] == [squares_counts(i)[0] for i in range(5)]
    assert report["images"][3]["frame"]["source_ts"] == 0.2
    assert report["totals"]["RBC"] == squares_counts(7)[0] + sum(squares_counts(i)[0] for i in range(5))
    assert len((tmp_path / "f.jsonl").read_text().splitlines()) == 5
    assert cv2.VideoCapture(str(tmp_path / "o.avi")).get(cv2.CAP_PROP_FRAME_COUNT) == 5
    assert "run.avi#4" in capsys.readouterr().out   # the table shows each frame


def test_an_unreadable_video_is_skipped_and_named(tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 100)
    good = squares_video(tmp_path / "ok.avi", 2)
    assert main(["count", str(bad), str(good), "--json", str(tmp_path / "r.json"), "--quiet"]) == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["images"]) == 2 and report["failed"][0]["path"].endswith("broken.mp4")
    assert "broken.mp4: cannot open video file" in capsys.readouterr().err
