"""The live road is on the run road: ``bcedge live`` counts a video with the bundled model, torch blocked."""
import json

import pytest

from bcedge.catalogue import DEFAULT_MODEL
from bcedge.testing.no_torch import run_without_torch
from bcedge.testing.videos import sample_frames, write_video


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="the bundled default model is not in this checkout")
def test_bcedge_live_with_the_real_model_and_no_torch(tmp_path):
    video = write_video(tmp_path / "smear.avi", sample_frames(3))
    out = tmp_path / "frames.jsonl"
    code = f"""
        import bcedge.live.run, bcedge.live.server, bcedge.runtime.live_stream, bcedge.runtime.frame_sources
        from bcedge.cli import main
        code = main(["live", r"{video}", "--max-frames", "2", "--fields", "--jsonl", r"{out}"])
        assert "torch" not in sys.modules
        sys.exit(code)
    """
    run = run_without_torch(code)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["frame"]["index"] for line in lines] == [0, 1]
    assert all(line["counts"]["RBC"] > 5 and line["width"] == 640 for line in lines)   # a smear has red cells
    assert lines[1]["running_totals"]["RBC"] == lines[0]["counts"]["RBC"] + lines[1]["counts"]["RBC"]
    assert "TOTAL" in run.stdout and "2 frames counted" in run.stderr
