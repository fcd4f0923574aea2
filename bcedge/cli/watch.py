"""``bcedge watch``: the folder service."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bcedge.cli.options import add_model_options, add_scale_options, pixel_count, positive_int, scale_options
from bcedge.cli.registry import command


@command("watch", "Count every image that lands in a folder, exactly once (a service; --once for a batch)")
def _watch(p: argparse.ArgumentParser):
    p.add_argument("in_dir", type=Path, help="folder to watch")
    p.add_argument("--out", type=Path, required=True,
                   help="results/, summary.csv/.json, quarantine.jsonl, watch.log and the state database")
    add_model_options(p)
    add_scale_options(p)
    p.add_argument("--recursive", action="store_true", help="also watch subfolders")
    p.add_argument("--workers", type=positive_int, default=2, help="files processed at once (default 2)")
    p.add_argument("--once", action="store_true", help="process what is there, then exit (batch mode)")
    p.add_argument("--poll", action="store_true", help="poll instead of filesystem events (automatic on NFS/SMB)")
    p.add_argument("--poll-interval", type=float, default=2.0, help="seconds between polls (default 2)")
    p.add_argument("--settle", type=float, default=1.0,
                   help="a file is complete once unchanged this many seconds, or renamed into place (default 1)")
    p.add_argument("--overlays", action="store_true", help="also write OUT/overlays/<path>.png")
    p.add_argument("--max-pixels", type=pixel_count, default=500_000_000,
                   help="quarantine images larger than this many pixels (default 5e8; 0: no cap)")
    p.add_argument("--ignore", action="append", default=[], metavar="GLOB",
                   help="skip matching files, e.g. '*.xml' (repeatable)")
    p.add_argument("--grace", type=float, default=30.0,
                   help="on SIGINT/SIGTERM, seconds to finish files in flight before rolling them back (default 30)")
    p.add_argument("--quiet", action="store_true", help="no status line")

    def run(args) -> int:
        import logging

        from bcedge.watch import WatchConfig, WatchService, service
        from bcedge.watch.progress import TextFormatter

        config = WatchConfig(args.in_dir, args.out, recursive=args.recursive, workers=args.workers, once=args.once,
                             poll=True if args.poll else None, poll_interval=args.poll_interval, settle=args.settle,
                             overlays=args.overlays, max_pixels=args.max_pixels or None,
                             ignore=tuple(args.ignore), grace=args.grace, model_name=str(args.model))
        counter = service.open_counter(args.model, backend=args.backend, device=args.device,
                                       max_pixels=args.max_pixels, **scale_options(args))
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(TextFormatter())
        console.setLevel(logging.WARNING)
        logging.getLogger("bcedge.watch").addHandler(console)
        watch = WatchService(counter, config, show_status=not args.quiet)
        try:
            code = int(watch.run())
        finally:
            logging.getLogger("bcedge.watch").removeHandler(console)
        if watch.abandoned:
            # Rolled-back files' worker threads may still be inside the model's native code: leaving the
            # interpreter under them aborts the process (SIGABRT, "terminate called without an active
            # exception"). Their state is already rolled back and every file is closed, so end here.
            import os

            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code

    return run
