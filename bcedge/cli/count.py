"""``bcedge count``: the main job, on the runtime alone (no torch)."""
from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from bcedge.cli.options import (add_engine_options, add_model_options, add_scale_options, check_outputs, pixel_count,
                                positive_int, scale_options)
from bcedge.cli.registry import UserError, command


def image_inputs(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, OSError]]]:
    """Files as given and folders expanded to the images they hold (sorted; not their subfolders), each file once;
    plus the paths that are neither (missing, or a folder without images) with why: reported and skipped. In a
    folder, a file named like an image is taken (a corrupt one is reported), and any other file whose bytes start
    like one; a phone's HEIC or AVIF photo is taken too, so that it is reported rather than passed over."""
    from bcedge.imageio import IMAGE_SUFFIXES, PHONE_SUFFIXES
    from bcedge.runtime.sources import holds_image

    def is_image(file: Path) -> bool:
        if file.name.startswith("."):
            return False
        return file.suffix.lower() in IMAGE_SUFFIXES + PHONE_SUFFIXES or (file.is_file() and holds_image(file))

    files: list[Path] = []
    problems: list[tuple[Path, OSError]] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if is_image(p))
            if not found:
                problems.append((path, FileNotFoundError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append((path, FileNotFoundError(f"{path}: no such image file or folder")))
    unique: dict[str, Path] = {}
    for file in files:
        unique.setdefault(os.path.realpath(file), file)  # a file given twice (itself and in its folder): once
    return list(unique.values()), problems


def check_count_outputs(args: argparse.Namespace, inputs: list[Path]) -> None:
    """``check_outputs``, and no overlays written into a folder being counted (the next count of that folder would
    count them as smears)."""
    from bcedge.atomic import check_writable

    check_outputs(inputs, {"--json": args.json, "--csv": args.csv, "--jsonl": args.jsonl,
                           "--overlay-video": args.overlay_video})
    if args.overlay is not None:
        check_writable(args.overlay, folder=True)
        if os.path.realpath(args.overlay) in {os.path.realpath(path) for path in args.images if path.is_dir()}:
            raise UserError(f"--overlay {args.overlay} is a folder being counted: the overlays would be counted as "
                            "smears next time; write them to another folder")


@command("count", "Count blood cells in images of any size, and videos frame by frame (no torch needed)")
def _count(p: argparse.ArgumentParser):
    p.add_argument("images", type=Path, nargs="+", help="image files or folders, or video files (every frame counted)")
    add_model_options(p)
    add_scale_options(p)
    p.add_argument("--overlap", type=int, default=None, help="tile overlap in px (default: largest cell size)")
    p.add_argument("--batch-size", type=positive_int, default=4, help="tiles per inference call (default 4)")
    p.add_argument("--merge", default="core",
                   help="how tile detections become one set: core (default), core+ios (also merges a detector's "
                        "partial box from a neighbouring tile into the whole cell), nms, greedy_nmm (SAHI-like)")
    p.add_argument("--max-pixels", type=pixel_count, default=None,
                   help="refuse images larger than this many pixels, e.g. 2e9 (default: one pixel per 16 bytes "
                        "of memory, 537 Mpx on 8 GB; 0: no limit)")
    p.add_argument("--json", type=Path, default=None, help="write counts and COCO-style detections here")
    p.add_argument("--csv", type=Path, default=None, help="write per-image counts as CSV here")
    p.add_argument("--overlay", type=Path, default=None, help="folder for overlay PNGs")
    p.add_argument("--quiet", action="store_true", help="no progress bars (shown on a terminal only)")
    add_engine_options(p)
    from bcedge.cli.live import add_stream_outputs

    add_stream_outputs(p, jsonl_default="none; each frame is in --json and the table")  # for videos

    def run(args) -> int:
        from bcedge.atomic import atomic_write_json, atomic_write_text
        from bcedge.report.counts import (build_report, error_entry, legend_notes, model_info, report_csv, report_table,
                                          result_entry)
        from bcedge.report.names import escape_name
        from bcedge.report.overlay import overlay_path, write_source_overlay
        from bcedge.cli.live import count_video
        from bcedge.runtime.frame_sources import is_video_file
        from bcedge.runtime.frames import decode_cap

        videos = [path for path in args.images if path.is_file() and is_video_file(path)]
        if len(videos) > 1 and (args.jsonl or args.overlay_video):
            raise UserError("--jsonl and --overlay-video take one video at a time")
        if args.engine == "local" and (args.address or args.workers or args.worker_gpus):
            raise UserError("--address, --workers and --worker-gpus are for --engine ray")
        if args.engine != "local" and videos:
            raise UserError(f"--engine {args.engine} counts images; count videos with --engine local ({videos[0]})")
        files, problems = image_inputs([path for path in args.images if path not in videos])
        check_count_outputs(args, files + videos)   # now, not after an hour of counting
        failed = [error_entry(path, exc) for path, exc in problems]
        for entry in failed:
            print(f"bcedge: skipped {entry['message']}", file=sys.stderr)
        images = []
        with _counting(args, files) as (counter, progress, outcomes):
            classes = list(counter.meta.class_names)
            for image_id, (path, name, result) in enumerate(outcomes, start=1):
                if isinstance(result, Exception):  # unreadable, corrupt, too large: the input's fault
                    failed.append(error_entry(path, result))
                    progress.write(f"bcedge: skipped {failed[-1]['message']}")
                    continue
                extra = {}
                if args.overlay is not None:
                    target = write_source_overlay(overlay_path(args.overlay, name), path, result.detections, classes,
                                                  notes=legend_notes(result),
                                                  max_decode_pixels=decode_cap(counter.max_pixels))
                    extra["overlay"] = escape_name(target)
                images.append(result_entry(escape_name(path), result, detections=True, image_id=image_id, **extra))
        for video in videos:
            try:
                entries, interrupted = count_video(counter, video, args, len(images) + 1, sys.stdout)
            except (OSError, ValueError) as exc:  # unreadable: the input's fault
                failed.append(error_entry(video, exc))
                print(f"bcedge: skipped {failed[-1]['message']}", file=sys.stderr)
                continue
            images.extend(entries)
            if interrupted:  # Ctrl-C: report what was counted, count no further videos
                break
        report = build_report(images, failed, model_info(counter.meta, str(args.model), counter.backend.describe()),
                              classes)
        if images:
            print(report_table(report))
        if args.json is not None:
            atomic_write_json(args.json, report)
        if args.csv is not None:
            atomic_write_text(args.csv, report_csv(report))
        return 1 if failed else 0

    return run


@contextmanager
def _counting(args, files: list[Path]):
    """(counter, progress, outcomes): ``outcomes`` gives (path, name, CountResult or the error a bad image
    raised) in input order, counted here or by a Ray cluster's workers (``--engine ray``, ``bcedge.cluster``)."""
    from bcedge.report.names import unique_names

    options = dict(scale_options(args), overlap=args.overlap, batch_size=args.batch_size, merge=args.merge,
                   max_pixels=args.max_pixels, backend=args.backend, device=args.device)
    names = unique_names(files)
    if args.engine == "ray":
        from bcedge.cluster import ClusterError, RayEngine

        try:
            gpus = {"worker_options": {"num_gpus": args.worker_gpus}} if args.worker_gpus else {}
            with RayEngine(args.model, args.address, args.workers, progress=not args.quiet, **gpus, **options) as engine:
                outcomes = ((path, name, outcome) for (path, outcome), name in zip(engine.count(files), names))
                yield engine.counter, engine.progress, outcomes
        except ClusterError as exc:
            raise UserError(str(exc)) from None
        return
    from bcedge.cli.progress import CountProgress
    from bcedge.runtime.counter import Counter

    counter = Counter.load(args.model, **options)
    with CountProgress(counter, len(files), enabled=not args.quiet) as progress:
        yield counter, progress, ((path, name, _counted(progress, path, name)) for path, name in zip(files, names))


def _counted(progress, path: Path, name: str):
    try:
        return progress.count_file(path, name)
    except (OSError, ValueError) as exc:  # the input's fault: reported and skipped
        return exc
