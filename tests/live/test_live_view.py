"""The live view: its HTTP endpoints, the localhost default, and the page in a real headless browser
(Debian's chromium, driven through its own binary; skipped when it is not installed)."""
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from bcedge.live.server import LiveServer
from bcedge.runtime.live_stream import FrameStream
from bcedge.testing.videos import (
    FrameCounter,
    squares_counts,
    squares_frame,
    write_video,
)

CLASSES = ["RBC", "WBC", "Platelets"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def served(tmp_path):
    """A live view fed with four counted frames (320x240 squares); the last has squares_counts(3)."""
    video = write_video(tmp_path / "run.avi", [squares_frame(i, (320, 240)) for i in range(4)])
    server = LiveServer(CLASSES, port=0).start()
    stream = FrameStream(FrameCounter(), str(video))
    for result in stream:
        server.publish(result, stream)
    yield server
    server.close()


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.headers.get("Content-Type"), response.read()


def test_binds_localhost_unless_asked():
    server = LiveServer(CLASSES, port=0)
    try:
        assert server.httpd.server_address[0] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
    finally:
        server.close()


def test_stats_frame_and_mjpeg_endpoints(served):
    kind, body = get(served.url + "stats.json")
    stats = json.loads(body)
    red, blue = squares_counts(3)
    assert kind == "application/json" and stats["frame"] == 3
    assert stats["counts"] == {"RBC": red, "WBC": blue, "Platelets": 0}
    assert stats["totals"]["RBC"] == sum(squares_counts(i)[0] for i in range(4)) and stats["fps"] > 0
    kind, body = get(served.url + "frame.jpg")
    assert kind == "image/jpeg" and cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)
    with urllib.request.urlopen(served.url + "stream.mjpg", timeout=5) as response:
        assert response.headers.get("Content-Type").startswith("multipart/x-mixed-replace")
        head = response.read(200)
    assert head.startswith(b"--frame\r\nContent-Type: image/jpeg") and b"\xff\xd8" in head
    with pytest.raises(urllib.error.HTTPError):
        get(served.url + "nothing")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_page_in_a_headless_browser_shows_the_frame_and_the_counts(served, tmp_path):
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--timeout=3000",
               f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*browser, "--dump-dom", served.url], capture_output=True, text=True, timeout=60,
                         check=False).stdout
    red, blue = squares_counts(3)
    assert f'data-class="RBC">{red}<' in dom and f'data-class="WBC">{blue}<' in dom and 'id="index">3<' in dom
    assert 'data-polled="3"' in dom  # the page's script fetched /stats.json and filled the tables
    shot = tmp_path / "view.png"
    subprocess.run([*browser, "--window-size=900,500", f"--screenshot={shot}", served.url], capture_output=True,
                   timeout=60, check=True)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (500, 900)
    page = (np.abs(image.astype(int) - 17).max(axis=2) < 8).mean()          # the page's dark background
    frame = image[:, :600]
    grey = (np.abs(frame.astype(int) - 200).max(axis=2) < 25).mean()     # the frame's grey smear stand-in
    b, g, r = (frame[..., i].astype(int) for i in range(3))
    legend = ((b - r > 100) & (g - r > 60)).sum()   # the overlay legend's cyan RBC line, drawn in the frame
    assert page > 0.2 and grey > 0.2 and legend > 50, (page, grey, legend)


STUB_SERVE = """
import sys
from bcedge.runtime.counter import Counter
from bcedge.testing.videos import FrameCounter
Counter.load = staticmethod(lambda model="default", **o: FrameCounter())
from bcedge.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_bcedge_live_serve_publishes_each_counted_frame(tmp_path):
    video = write_video(tmp_path / "run.avi", [squares_frame(i) for i in range(40)])
    proc = subprocess.Popen([sys.executable, "-c", STUB_SERVE, "live", str(video), "--fps", "10", "--serve",
                             "--port", "0", "--jsonl", str(tmp_path / "f.jsonl")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "live view on http://127.0.0.1:" in line, line
        url = line.split(" on ")[1].strip()
        seen = set()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(seen) < 3:
            stats = json.loads(get(url + "stats.json")[1])
            if stats["frame"] is not None:
                seen.add(stats["frame"])
                assert stats["counts"]["RBC"] == squares_counts(stats["frame"])[0]
            time.sleep(0.1)
        assert len(seen) >= 3  # the view follows the stream
    finally:
        proc.kill()
        proc.communicate(timeout=10)
