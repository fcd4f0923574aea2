"""The live view: a small threaded HTTP server (stdlib only) showing the current frame with its boxes
(an MJPEG stream), the per-class counts, the frame rate and the latency.

    /              the page (counts filled in at load, then kept current by polling /stats.json)
    /stream.mjpg   multipart JPEG: each counted frame with boxes, as it comes
    /frame.jpg     the latest frame alone
    /stats.json    counts, totals over the run, frame index, frames/s, latency, drops

It binds 127.0.0.1 unless another address is asked for: the view shows patient samples.
"""
from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>bcedge live</title>
<style>
body {{ font-family: sans-serif; margin: 0; background: #111; color: #eee; display: flex; }}
#view {{ flex: 1; padding: 8px; }} #view img {{ width: 100%; background: #222; }}
#side {{ width: 260px; padding: 12px; }} table {{ border-collapse: collapse; width: 100%; }}
td {{ padding: 3px 6px; border-bottom: 1px solid #333; }} td.n {{ text-align: right; font-weight: bold; }}
.meta {{ color: #aaa; font-size: 90%; margin-top: 10px; }}
</style></head>
<body><div id="view"><img id="frame" src="/stream.mjpg" alt="current frame"></div>
<div id="side"><h3>Counts</h3>
<table id="counts">{rows}</table>
<div class="meta">frame <span id="index">{index}</span> &middot; <span id="fps">{fps}</span> frames/s<br>
latency <span id="latency">{latency}</span> ms &middot; dropped <span id="dropped">{dropped}</span></div>
<h3>Run totals</h3><table id="totals">{totals}</table></div>
<script>
function rows(counts) {{
  return Object.entries(counts).map(([k, v]) =>
    '<tr><td>' + k + '</td><td class="n" data-class="' + k + '">' + v + '</td></tr>').join('');
}}
async function poll() {{
  try {{
    const s = await (await fetch('/stats.json', {{cache: 'no-store'}})).json();
    document.getElementById('counts').innerHTML = rows(s.counts);
    document.getElementById('totals').innerHTML = rows(s.totals);
    document.getElementById('index').textContent = s.frame;
    document.getElementById('fps').textContent = s.fps.toFixed(1);
    document.getElementById('latency').textContent = Math.round(s.latency_s * 1000);
    document.getElementById('dropped').textContent = s.dropped;
    document.body.dataset.polled = s.frame;  // the page is live (tests look for it)
  }} catch (e) {{}}
  setTimeout(poll, 500);
}}
poll();
</script></body></html>
"""


def _rows(counts: dict[str, int]) -> str:
    return "".join(f'<tr><td>{html.escape(k)}</td><td class="n" data-class="{html.escape(k)}">{v}</td></tr>'
                   for k, v in counts.items())


class LiveServer:
    """Serves the latest published frame; ``publish(result, stream)`` is ``run_live``'s per-frame callback."""

    def __init__(self, class_names: Sequence[str], host: str = "127.0.0.1", port: int = 8765,
                 jpeg_quality: int = 80) -> None:
        self.classes, self.jpeg_quality = list(class_names), jpeg_quality
        self.resend = 0.5   # seconds: an unchanged frame is sent again this often (see _mjpeg)
        self._changed = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._closing = False
        self.stats: dict[str, Any] = {"frame": None, "counts": dict.fromkeys(self.classes, 0),
                                      "totals": dict.fromkeys(self.classes, 0), "fps": 0.0, "latency_s": 0.0,
                                      "dropped": 0, "source": None, "updated": None}
        try:
            self.httpd = ThreadingHTTPServer((host, port), self._handler())
        except OSError as exc:
            raise OSError(exc.errno, f"live view cannot listen on {host}:{port}: {exc.strerror}") from None
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> LiveServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        daemon=True, name="bcedge-live-view")
        self._thread.start()
        return self

    def close(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._thread is not None:   # shutdown() waits for serve_forever: only when it runs
            self.httpd.shutdown()
            self._thread = None
        self.httpd.server_close()

    def publish(self, result: Any, stream: Any = None) -> None:
        """Show ``result`` (a ``FrameResult``): its frame with boxes, counts and the stream's figures."""
        from bcedge.report.overlay import draw_overlay

        canvas = draw_overlay(result.image, result.detections, self.classes)
        ok, data = cv2.imencode(".jpg", np.ascontiguousarray(canvas[:, :, ::-1]),
                                [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        counts = result.counts
        with self._changed:
            totals = self.stats["totals"]
            for name, value in counts.items():
                totals[name] = totals.get(name, 0) + int(value)
            self.stats.update(frame=result.frame_index, counts=dict(counts), source=result.source,
                              latency_s=round(result.latency_s, 4), updated=time.time())
            if stream is not None:
                self.stats.update(fps=round(stream.stats.fps, 2), dropped=stream.stats.dropped)
            if ok:
                self._jpeg, self._seq = data.tobytes(), self._seq + 1
            self._changed.notify_all()

    @property
    def closing(self) -> bool:
        return self._closing

    def snapshot(self) -> tuple[dict[str, Any], bytes | None, int]:
        with self._changed:
            return json.loads(json.dumps(self.stats)), self._jpeg, self._seq

    def next_frame(self, after: int, timeout: float = 1.0) -> tuple[bytes | None, int]:
        """The first frame newer than ``after``, or after ``timeout`` the latest; (None, after) when closing."""
        with self._changed:
            self._changed.wait_for(lambda: self._seq > after or self._closing, timeout)
            if self._closing:
                return None, after
            return self._jpeg, self._seq

    def page(self) -> str:
        stats, _, _ = self.snapshot()
        return PAGE.format(rows=_rows(stats["counts"]), totals=_rows(stats["totals"]),
                           index="-" if stats["frame"] is None else stats["frame"], fps=f"{stats['fps']:.1f}",
                           latency=round(stats["latency_s"] * 1000), dropped=stats["dropped"])

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet: the terminal shows the counts
                pass

            def _send(self, body: bytes, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path in ("/", "/index.html"):
                    self._send(server.page().encode(), "text/html; charset=utf-8")
                elif path == "/stats.json":
                    self._send(json.dumps(server.snapshot()[0]).encode(), "application/json")
                elif path == "/frame.jpg":
                    jpeg = server.snapshot()[1]
                    if jpeg is None:
                        self.send_error(503, "no frame counted yet")
                    else:
                        self._send(jpeg, "image/jpeg")
                elif path == "/stream.mjpg":
                    self._mjpeg()
                else:
                    self.send_error(404)

            def _mjpeg(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                seq = 0
                _, jpeg, current = server.snapshot()
                try:
                    self.wfile.write(b"--frame\r\n")
                    while True:
                        # a browser shows a part once the next one begins: a source that has stopped (or a
                        # slow one) has its latest frame sent again each ``resend`` seconds
                        if jpeg is not None:
                            self.wfile.write(b"Content-Type: image/jpeg\r\nContent-Length: "
                                             + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n--frame\r\n")
                            self.wfile.flush()
                            seq = current
                        jpeg, current = server.next_frame(seq, timeout=server.resend)
                        if jpeg is None and server.closing:
                            return
                except (BrokenPipeError, ConnectionResetError):
                    return

        return Handler
