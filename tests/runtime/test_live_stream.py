"""The persistent frame pipeline behind ``Counter.stream``: policies, timestamps, latency, threads
started once, stopping, and failures handed to the caller."""
import threading
import time

import numpy as np
import pytest

from bcedge.runtime.counter import Counter
from bcedge.runtime.live_stream import FrameStream, Policy
from bcedge.runtime.readers.video import SourceError
from bcedge.testing.videos import (
    FrameCounter,
    squares_counts,
    squares_frame,
    squares_video,
)


class ThreadRecorder(FrameCounter):
    def __init__(self, delay=0.0):
        super().__init__(delay)
        self.threads = set()

    def count(self, frame, source="frame"):
        self.threads.add(threading.get_ident())
        return super().count(frame, source)


def test_all_counts_every_frame_in_order_with_times_and_latency_on_one_thread(tmp_path):
    video = squares_video(tmp_path / "run.avi", 12)
    counter = ThreadRecorder()
    results = list(Counter.stream(counter, str(video), policy="all"))
    assert [r.frame_index for r in results] == list(range(12))
    assert [(r.counts["RBC"], r.counts["WBC"]) for r in results] == [squares_counts(i) for i in range(12)]
    assert [round(r.source_ts, 2) for r in results] == [round(i / 10, 2) for i in range(12)]
    assert all(0 < r.latency_s < 5 and r.wall_time > 0 and r.image is not None for r in results)
    assert len(counter.threads) == 1 and threading.get_ident() not in counter.threads  # threads started once
    record = results[3].to_dict()
    assert record["frame"]["index"] == 3 and record["frame"]["latency_s"] >= 0 and record["counts"]["RBC"] == 4


def test_arrays_are_still_accepted_as_before():
    frames = [squares_frame(i) for i in range(4)]
    results = list(Counter.stream(FrameCounter(), iter(frames)))
    assert [r.frame_index for r in results] == [0, 1, 2, 3] and results[2].source_ts is None
    assert [r.counts["RBC"] for r in results] == [squares_counts(i)[0] for i in range(4)]


def test_every_n_counts_every_nth_frame(tmp_path):
    video = squares_video(tmp_path / "run.avi", 10)
    assert [r.frame_index for r in Counter.stream(FrameCounter(), video, policy="every:4")] == [0, 4, 8]
    frames = [squares_frame(i) for i in range(7)]
    assert [r.frame_index for r in Counter.stream(FrameCounter(), frames, policy="every 3")] == [0, 3, 6]


def test_latest_drops_stale_frames_counts_the_drops_and_still_counts_the_last(tmp_path):
    video = squares_video(tmp_path / "run.avi", 24)
    stream = FrameStream(FrameCounter(delay=0.04), str(video), policy="latest", pace_fps=60)
    results = list(stream)
    indices = [r.frame_index for r in results]
    assert indices == sorted(indices) and indices[-1] == 23 and indices[0] == 0
    assert stream.stats.dropped > 0 and stream.stats.read == 24
    assert sum(r.dropped_before for r in results) == stream.stats.dropped == 24 - len(results)
    assert all(r.latency_s < 0.2 for r in results)  # never waits behind a queue of stale frames


def test_reading_and_counting_overlap():
    def slow_frames(n, delay):
        for i in range(n):
            time.sleep(delay)
            yield squares_frame(i)

    started = time.perf_counter()
    assert len(list(Counter.stream(FrameCounter(delay=0.03), slow_frames(10, 0.03)))) == 10
    assert time.perf_counter() - started < 0.5  # one after the other: 0.6 s


def test_stop_finishes_the_frame_in_hand_and_ends():
    frames = (squares_frame(i % 5) for i in range(10_000))
    stream = FrameStream(FrameCounter(delay=0.01), frames)
    results = []
    for result in stream:
        results.append(result)
        if len(results) == 3:
            stream.stop()
    assert 3 <= len(results) <= 6 and [r.frame_index for r in results] == list(range(len(results)))


def test_failures_in_the_source_or_the_counter_reach_the_caller(tmp_path):
    def broken():
        yield squares_frame(0)
        raise SourceError("camera 0: unplugged")

    with pytest.raises(SourceError, match="unplugged"):
        list(Counter.stream(FrameCounter(), broken()))

    class Failing(FrameCounter):
        def count(self, frame, source="frame"):
            raise ValueError(f"{source}: bad frame")

    with pytest.raises(ValueError, match="frame 0: bad frame"):
        list(Counter.stream(Failing(), [np.zeros((8, 8, 3), np.uint8)]))
    with pytest.raises(SourceError, match="no such video file"):
        Counter.stream(FrameCounter(), str(tmp_path / "none.mp4"))


@pytest.mark.parametrize("text", ["sometimes", "every:0", "every:x", "latest:2"])
def test_a_bad_policy_is_refused_by_name(text):
    with pytest.raises(ValueError, match="frame policy"):
        Policy.parse(text)


class Jittery(ThreadRecorder):
    """Takes longer on some frames, so with two counting threads results finish out of order."""

    def count(self, frame, source="frame"):
        index = int(source.rsplit(" ", 1)[-1])
        time.sleep(0.03 if index % 3 == 0 else 0.0)
        return super().count(frame, source)


def test_two_counting_threads_keep_frame_order_and_overlap():
    counter = Jittery()
    frames = [squares_frame(i) for i in range(12)]
    started = time.perf_counter()
    results = list(FrameStream(counter, frames, workers=2))
    assert [r.frame_index for r in results] == list(range(12))
    assert [r.counts["RBC"] for r in results] == [squares_counts(i)[0] for i in range(12)]
    assert len(counter.threads) == 2 and time.perf_counter() - started < 0.5


def test_with_two_threads_a_failure_comes_after_the_frames_before_it():
    class FailsAtFive(FrameCounter):
        def count(self, frame, source="frame"):
            if source == "frame 5":
                raise ValueError("frame 5: bad frame")
            return super().count(frame, source)

    seen = []
    with pytest.raises(ValueError, match="frame 5"):
        for result in FrameStream(FailsAtFive(), [squares_frame(i) for i in range(10)], workers=2):
            seen.append(result.frame_index)
    assert seen == [0, 1, 2, 3, 4]


def test_leaving_the_loop_does_not_wait_for_a_source_blocked_in_its_read():
    """A triggered camera waits for its next trigger inside the caller's source; breaking out must not wait for it.
    The reader thread ends, and the source is closed, once that read returns."""
    released, closed = threading.Event(), threading.Event()

    def triggered():
        try:
            yield squares_frame(0)
            released.wait(10)          # no trigger until the test says so
            yield squares_frame(1)
        finally:
            closed.set()

    started = time.perf_counter()
    for _ in Counter.stream(FrameCounter(), triggered()):
        break
    assert time.perf_counter() - started < 2.0 and not closed.is_set()
    released.set()
    assert closed.wait(5)
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t.name.startswith("bcedge-")]
