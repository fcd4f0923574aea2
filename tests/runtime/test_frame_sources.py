"""Frame sources through OpenCV VideoCapture and still images: frames, timestamps, ends, corrupt
frames, unreadable sources and reconnects (a fake capture stands in for a network stream)."""
import os
import time

import numpy as np
import pytest

from bcedge.runtime.frame_sources import open_frames
from bcedge.runtime.readers.video import CaptureFrames, SourceError, has_gstreamer
from bcedge.testing.squares import StubCounter
from bcedge.testing.videos import (
    sample_frames,
    squares_counts,
    squares_frame,
    squares_video,
    write_video,
)


def _counts(frame):
    return tuple(StubCounter().count(frame.pixels).counts[c] for c in ("RBC", "WBC"))


def test_a_video_file_gives_every_frame_with_index_and_timestamp_then_ends(tmp_path):
    video = squares_video(tmp_path / "run.avi", 8, fps=10)
    source = open_frames(str(video))
    frames = list(source)
    assert [f.index for f in frames] == list(range(8))
    assert [round(f.source_ts, 3) for f in frames] == [round(i / 10, 3) for i in range(8)]
    assert [_counts(f) for f in frames] == [squares_counts(i) for i in range(8)]
    assert all(f.pixels.shape == (64, 96, 3) and f.wall_time > 0 and f.captured > 0 for f in frames)
    assert source.stats.frames == 8 and source.stats.corrupt == 0


def test_a_sample_image_video_reads_back_at_its_size(tmp_path):
    video = write_video(tmp_path / "smear.avi", sample_frames(3, (160, 120)))
    assert [f.pixels.shape for f in open_frames(video)] == [(120, 160, 3)] * 3


def test_every_n_grabs_the_others_without_returning_them(tmp_path):
    video = squares_video(tmp_path / "run.avi", 10)
    assert [f.index for f in open_frames(str(video)).read_frames(every=3)] == [0, 3, 6, 9]


def test_a_corrupt_frame_is_skipped_counted_and_reported_on_the_next(tmp_path):
    video = squares_video(tmp_path / "run.avi", 10)
    data = bytearray(video.read_bytes())
    chunks = [i for i in range(len(data) - 4) if data[i:i + 4] == b"00dc"]
    start = chunks[5] + 8  # frame 4's JPEG (the first "00dc" is in the header)
    size = int.from_bytes(data[start - 4:start], "little")
    data[start:start + size] = bytes(size)
    bad = tmp_path / "bad.avi"
    bad.write_bytes(bytes(data))
    source = open_frames(str(bad))
    frames = list(source)
    assert source.stats.corrupt == 1 and len(frames) == 9
    after = [f for f in frames if f.corrupt_before]
    assert len(after) == 1 and after[0].corrupt_before == 1
    assert all(_counts(f) == squares_counts(f.index) for f in frames)  # numbering stays true after the skip


@pytest.mark.parametrize("spec, words", [
    ("missing.mp4", "no such video file"),
    ("junk.mp4", "cannot open video file"),
    ("/dev/video97", "camera /dev/video97"),
    ("empty_dir", "no images"),
])
def test_an_unreadable_source_is_named_in_the_error(tmp_path, spec, words):
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    (tmp_path / "empty_dir").mkdir()
    target = spec if spec.startswith("/") else str(tmp_path / spec)
    with pytest.raises(SourceError) as error:
        open_frames(target)
    assert words in str(error.value) and os.path.basename(spec) in str(error.value)


@pytest.mark.skipif(has_gstreamer(), reason="this OpenCV has GStreamer")
def test_a_gstreamer_pipeline_without_gstreamer_says_so():
    with pytest.raises(SourceError, match="without GStreamer"):
        open_frames("videotestsrc num-buffers=2 ! videoconvert ! appsink")


def test_stills_from_a_folder_or_glob_in_name_order_with_mtime_and_bad_files_skipped(tmp_path):
    import cv2

    for i in range(4):
        cv2.imwrite(str(tmp_path / f"field_{i}.png"), squares_frame(i)[:, :, ::-1])
    os.utime(tmp_path / "field_2.png", (1_700_000_000, 1_700_000_000))
    (tmp_path / "field_1.png").write_bytes(b"broken")
    source = open_frames(tmp_path)
    frames = list(source)
    assert [f.index for f in frames] == [0, 2, 3] and source.stats.corrupt == 1
    assert frames[1].source_ts == 1_700_000_000 and frames[1].corrupt_before == 1
    assert [_counts(f) for f in frames] == [squares_counts(i) for i in (0, 2, 3)]
    assert [f.index for f in open_frames(str(tmp_path / "field_[23].png"))] == [0, 1]


class FakeStream:
    """A network stream whose connections deliver the given numbers of frames, then stop; a connection
    planned as None fails to open."""

    def __init__(self, plan):
        self.plan, self.opened = list(plan), 0

    def __call__(self, target, api):
        self.opened += 1
        return _FakeCapture(self.plan.pop(0) if self.plan else None)


class _FakeCapture:
    def __init__(self, frames):
        self.left = frames

    def isOpened(self):
        return self.left is not None

    def grab(self):
        if not self.left:
            return False
        self.left -= 1
        return True

    def retrieve(self):
        return True, np.zeros((8, 8, 3), np.uint8)

    def get(self, prop):
        return 0.0

    def release(self):
        pass


def test_a_stream_that_stops_is_reconnected_with_backoff_and_the_gap_reported():
    fake = FakeStream([3, None, 2])
    source = CaptureFrames("rtsp://cam", "rtsp://cam", "network stream", live=True, backoff=(0.02, 0.05),
                           max_reconnects=3, open_capture=fake)
    frames = []
    with pytest.raises(SourceError, match=r"rtsp://cam: network stream stopped and did not come back after 3 tries"):
        for frame in source:
            frames.append(frame)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.gap_s > 0.05 for f in frames] == [False, False, False, True, False]  # 0.02 failed, then 0.04
    assert source.stats.reconnects == 1 and len(source.stats.gaps) == 1
    assert fake.opened == 1 + 2 + 3


def test_a_paced_file_arrives_at_the_asked_rate(tmp_path):
    video = squares_video(tmp_path / "run.avi", 6)
    started = time.perf_counter()
    assert len(list(open_frames(video, pace_fps=50))) == 6
    assert time.perf_counter() - started >= 5 / 50
