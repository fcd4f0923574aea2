"""``bcedge live``: count a capture rig's frames as they come (camera, video, stream, image folder)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bcedge.cli.options import (
    add_model_options,
    add_scale_options,
    check_outputs,
    positive_int,
    scale_options,
)
from bcedge.cli.registry import UserError, command


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_stream_outputs(p: argparse.ArgumentParser, jsonl_default: str = "stdout") -> None:
    """The outputs of a stream of frames (``bcedge live``, and videos given to ``bcedge count``, whose frames are in
    its JSON and table: there, JSON lines only when ``--jsonl`` names a file)."""
    p.add_argument("--jsonl", type=Path, default=None,
                   help=f"write one JSON line per frame here (default: {jsonl_default})")
    p.add_argument("--detections", action="store_true", help="put each frame's boxes (COCO style) in its JSON line")
    p.add_argument("--fields", action="store_true",
                   help="each frame is one field of view of a smear: running totals as it goes, a per-field table at the end")
    p.add_argument("--overlay-video", type=Path, default=None, metavar="OUT.mp4",
                   help="write the frames with their boxes and counts as a video")


def stream_options(args: argparse.Namespace, policy: str, pace_fps: float | None = None, emit_jsonl: bool = True):
    """``LiveOptions`` from ``add_stream_outputs``'s arguments; output paths are checked now."""
    from bcedge.atomic import check_writable
    from bcedge.live.run import LiveOptions

    for output in (args.jsonl, args.overlay_video):
        if output is not None:
            check_writable(output)
    return LiveOptions(policy=policy, pace_fps=pace_fps, jsonl=args.jsonl, emit_jsonl=emit_jsonl,
                       detections=args.detections, fields=args.fields, overlay_video=args.overlay_video)


def count_video(counter, path: Path, args: argparse.Namespace, first_id: int, human) -> tuple[list[dict], bool]:
    """``bcedge count VIDEO``: every frame counted (policy all), each a report entry ``VIDEO#INDEX``; the
    stream outputs (``add_stream_outputs``) as ``bcedge live`` writes them, JSON lines only to --jsonl.
    Returns the entries and whether Ctrl-C stopped the run (the frames counted until then are kept)."""
    from bcedge.live.run import run_live
    from bcedge.report.counts import result_entry
    from bcedge.report.names import escape_name
    from bcedge.runtime.live_stream import default_workers

    entries: list[dict] = []

    def add(result, stream) -> None:
        entries.append(result_entry(f"{escape_name(path)}#{result.frame_index}", result, detections=True,
                                    image_id=first_id + len(entries), frame=result.frame_dict()))

    options = stream_options(args, "all", emit_jsonl=args.jsonl is not None)
    options.workers = default_workers()
    options.on_result.append(add)
    summary = run_live(counter, str(path), options, say=sys.stderr)
    if summary.fields_table:
        print(summary.fields_table, file=human)
    print(f"bcedge: {escape_name(path)}: {summary.line()}", file=sys.stderr)
    return entries, summary.interrupted


def report_summary(summary, human) -> None:
    if summary.fields_table:
        print(summary.fields_table, file=human)
    print(f"bcedge: {summary.line()}", file=sys.stderr)


@command("live", "Count cells live from a camera, video file, network stream or image folder")
def _live(p: argparse.ArgumentParser):
    p.add_argument("source", help="a camera (0, /dev/video0), video file, rtsp:// or http:// stream, GStreamer "
                                  "pipeline (with '!'), or a folder or glob of images")
    add_model_options(p)
    add_scale_options(p)
    p.add_argument("--batch-size", type=positive_int, default=4, help="tiles per inference call (default 4)")
    p.add_argument("--policy", default="auto",
                   help="all (every frame), latest (drop stale frames; a camera faster than the counter), every:N, "
                        "or auto (default: latest for cameras and streams, all for files and folders)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--realtime", action="store_true", help="play a video file at its own frame rate, as a camera")
    pace.add_argument("--fps", type=positive_float, default=None, help="deliver a file's frames at this rate")
    p.add_argument("--max-frames", type=positive_int, default=None, help="stop after this many counted frames")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="counting threads: with 2, one merges or prepares a frame while another is in the backend; "
                        "results stay in frame order (default: 2 on CPUs with more than 2 cores, else 1)")
    add_stream_outputs(p)
    p.add_argument("--serve", action="store_true", help="show the live view in a browser (see --host, --port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address the live view listens on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="live view port (default 8765; 0: any free port)")

    def run(args) -> int:
        from bcedge.live.run import run_live
        from bcedge.runtime.counter import Counter
        from bcedge.runtime.frame_sources import open_frames
        from bcedge.runtime.live_stream import Policy, default_workers

        check_outputs([args.source], {"--jsonl": args.jsonl, "--overlay-video": args.overlay_video})
        source = open_frames(args.source)
        policy = ("latest" if source.live else "all") if args.policy == "auto" else str(Policy.parse(args.policy))
        pace_fps = args.fps or (source.fps if args.realtime else None)
        if source.live and pace_fps:
            raise UserError(f"{args.source}: --realtime and --fps are for files; a live source sets its own pace")
        source.pace_fps = pace_fps
        options = stream_options(args, policy, pace_fps)
        options.max_frames, options.workers = args.max_frames, args.workers or default_workers()
        counter = Counter.load(args.model, backend=args.backend, device=args.device, **scale_options(args),
                               batch_size=args.batch_size)
        human = sys.stderr if args.jsonl is None else sys.stdout
        server = None
        if args.serve:
            from bcedge.live.server import LiveServer

            server = LiveServer(counter.meta.class_names, args.host, args.port)
            options.on_result.append(server.publish)
            server.start()
            print(f"bcedge: live view on {server.url}", file=sys.stderr, flush=True)
        try:
            summary = run_live(counter, source, options, say=human)
        finally:
            if server:
                server.close()
        report_summary(summary, human)
        return 0

    return run
