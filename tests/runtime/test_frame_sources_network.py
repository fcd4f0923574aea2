"""Network sources for real, over HTTP on localhost through OpenCV's FFmpeg: a video file behind a URL
ends at its end; an MJPEG stream that drops is reopened with backoff, the gap reported, and a stream
that never comes back ends in an error naming it."""
import threading
from functools import partial
from http.server import (
    BaseHTTPRequestHandler,
    SimpleHTTPRequestHandler,
    ThreadingHTTPServer,
)
from typing import ClassVar

import cv2
import pytest

from bcedge.runtime.frame_sources import open_frames
from bcedge.runtime.readers.video import SourceError
from bcedge.testing.squares import StubCounter
from bcedge.testing.videos import squares_counts, squares_frame, squares_video


def serve(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_video_file_behind_a_url_is_read_to_its_end(tmp_path):
    squares_video(tmp_path / "run.avi", 6)
    server, url = serve(partial(Quiet, directory=str(tmp_path)))
    try:
        source = open_frames(f"{url}/run.avi")
        frames = list(source)
    finally:
        server.shutdown()
    assert not source.live and [f.index for f in frames] == list(range(6))
    assert source.stats.reconnects == 0


class Mjpeg(BaseHTTPRequestHandler):
    """Each connection streams the next planned number of frames, then hangs up; then 503s."""

    plan: ClassVar[list] = []
    sent = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        if not self.plan:
            self.send_error(503)
            return
        frames = self.plan.pop(0)
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for _ in range(frames):
            _, jpeg = cv2.imencode(".jpg", squares_frame(Mjpeg.sent)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            data = jpeg.tobytes()
            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(data)).encode()
                             + b"\r\n\r\n" + data + b"\r\n")
            Mjpeg.sent += 1
        self.wfile.flush()


def test_an_mjpeg_stream_that_drops_is_reconnected_and_the_gap_reported():
    Mjpeg.plan, Mjpeg.sent = [4, 3], 0
    server, url = serve(Mjpeg)
    try:
        source = open_frames(f"{url}/stream.mjpg")
        assert source.live
        source.backoff, source.max_reconnects = (0.05, 0.1), 3
        frames = []
        with pytest.raises(SourceError, match=r"stream.mjpg: network stream stopped and did not come back after 3 tries"):
            for frame in source:
                frames.append(frame)
    finally:
        server.shutdown()
    assert [f.index for f in frames] == list(range(7)) and source.stats.reconnects == 1
    assert [f.gap_s > 0 for f in frames] == [False] * 4 + [True, False, False]   # the gap is on the first frame back
    assert frames[4].gap_s >= 0.05 and source.stats.gaps[0]["seconds"] == pytest.approx(frames[4].gap_s, abs=0.01)
    assert [StubCounter().count(f.pixels).counts["RBC"] for f in frames] == [squares_counts(i)[0] for i in range(7)]
