"""``bcedge live`` as a rig runs it, with a model-free counter: JSON lines, fields, overlay video,
policies, bad sources, and Ctrl-C (in a real subprocess)."""
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import pytest

from bcedge.cli import main
from bcedge.runtime.counter import Counter
from bcedge.testing.videos import (
    FrameCounter,
    squares_counts,
    squares_frame,
    squares_video,
)


@pytest.fixture
def stub(monkeypatch):
    monkeypatch.setattr(Counter, "load", staticmethod(lambda model="default", **options: FrameCounter()))


def test_json_lines_one_per_frame_to_stdout(tmp_path, stub, capsys):
    video = squares_video(tmp_path / "run.avi", 6)
    assert main(["live", str(video)]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["frame"]["index"] for line in lines] == list(range(6))
    assert [(line["counts"]["RBC"], line["counts"]["WBC"]) for line in lines] == [squares_counts(i) for i in range(6)]
    assert lines[2]["source"].endswith("run.avi#2") and lines[2]["frame"]["source_ts"] == pytest.approx(0.2)
    assert "6 frames counted" in err and "0 dropped" in err


def test_fields_jsonl_file_and_overlay_video(tmp_path, stub, capsys):
    video = squares_video(tmp_path / "run.avi", 5)
    out_jsonl, out_video = tmp_path / "o" / "frames.jsonl", tmp_path / "o" / "overlay.mp4"
    code = main(["live", str(video), "--fields", "--jsonl", str(out_jsonl), "--overlay-video", str(out_video),
                 "--detections"])
    assert code == 0
    lines = [json.loads(line) for line in out_jsonl.read_text().splitlines()]
    expected_rbc = [squares_counts(i)[0] for i in range(5)]
    assert [line["running_totals"]["RBC"] for line in lines] == [sum(expected_rbc[:i + 1]) for i in range(5)]
    assert len(lines[1]["detections"]) == sum(squares_counts(1))
    out = capsys.readouterr().out
    total_row = next(line for line in out.splitlines() if line.startswith("TOTAL")).split()
    assert "field 5 (frame 4)" in out and total_row[1] == str(sum(expected_rbc))  # the per-field table
    assert f"fields 5: RBC {sum(expected_rbc)}" in out  # the running line (stdout: the JSON lines went to a file)
    cap = cv2.VideoCapture(str(out_video))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 5 and cap.read()[0]
    assert not [p for p in out_video.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_every_n_and_a_folder_of_stills(tmp_path, stub, capsys):
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), squares_frame(i)[:, :, ::-1])
    assert main(["live", str(tmp_path), "--policy", "every:2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["frame"]["index"] for line in lines] == [0, 2, 4]


@pytest.mark.parametrize("args, words", [
    (["missing.mp4"], "no such video file"),
    (["run.avi", "--policy", "sometimes"], "frame policy"),
    (["/dev/video97"], "camera /dev/video97"),
])
def test_bad_sources_and_options_are_one_clear_line(tmp_path, stub, capsys, args, words):
    squares_video(tmp_path / "run.avi", 2)
    args = [a if a.startswith(("/", "-")) or a == "sometimes" else str(tmp_path / a) for a in args]
    assert main(["live", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bcedge: error:") and words in err and len(err.strip().splitlines()) == 1


STUB_LIVE = """
import sys
from bcedge.runtime.counter import Counter
from bcedge.testing.videos import FrameCounter
Counter.load = staticmethod(lambda model="default", **o: FrameCounter(delay=0.02))
from bcedge.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_finishes_the_frame_flushes_and_exits_0(tmp_path):
    video = squares_video(tmp_path / "run.avi", 400)
    out = tmp_path / "frames.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", STUB_LIVE, "live", str(video), "--fps", "25", "--fields",
                             "--jsonl", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]  # every line whole
    assert 3 <= len(lines) < 400 and [line["frame"]["index"] for line in lines] == list(range(len(lines)))
    assert "stopped by Ctrl-C" in stderr and f"field {len(lines)} (frame {len(lines) - 1})" in stdout
