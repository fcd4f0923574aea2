"""Benchmark subcommands: ``bench run|report|compare|machine``."""
from __future__ import annotations

import argparse
from pathlib import Path

from bcedge.cli.options import input_size
from bcedge.cli.registry import UserError, command


def _checkpoint_pair(text: str) -> tuple[str, Path]:
    arch, sep, path = text.partition("=")
    if not sep or not arch or not path:
        raise argparse.ArgumentTypeError(f"expected ARCH=PATH such as fcos_efficientnet_lite0=runs/best.pt, got {text!r}")
    return arch, Path(path)


def _bench_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="cpu", help="quick, cpu, gpu or jetson (default cpu)")
    p.add_argument("--archs", nargs="+", default=None, help="architectures instead of the profile's (see `bcedge zoo`)")
    p.add_argument("--runners", nargs="+", default=None,
                   help="BACKEND:DEVICE instead of the profile's, e.g. torch:cpu onnxruntime:cuda tensorrt:cuda")
    p.add_argument("--precisions", nargs="+", default=None, choices=["fp32", "fp16", "int8"])
    p.add_argument("--batch", nargs="+", type=int, default=None, help="batch sizes instead of the profile's")
    p.add_argument("--tile", nargs="+", type=input_size, default=None, help="tile sizes WIDTHxHEIGHT")
    p.add_argument("--checkpoint", action="append", type=_checkpoint_pair, default=[], metavar="ARCH=PATH",
                   help="trained checkpoint for an architecture (repeat); missing files are ignored, others are untrained")
    p.add_argument("--data", type=Path, default=None, help="labelled dataset for accuracy (its --split) and calibration (train)")
    p.add_argument("--split", default=None, help="evaluation split (default: the profile's, val)")
    p.add_argument("--calib", type=Path, action="append", default=[], help="calibration set folder to reuse (repeat)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="results folder")
    p.add_argument("--work", type=Path, default=None, help="artifact cache (default: bcedge-bench-matrix in the temp dir)")
    p.add_argument("--name", default=None, help="results file stem (default matrix_<profile>_<machine>)")
    p.add_argument("--note", default="", help="recorded with the machine description")
    p.add_argument("--min-time", type=float, default=None, help="seconds to time each cell at least")
    p.add_argument("--iterations", type=int, default=None, help="timed calls per cell at least")
    p.add_argument("--warmup", type=int, default=None, help="warm-up calls per cell")
    p.add_argument("--max-contention", type=float, default=None,
                   help="share of the CPU (0-1) other processes may use during a cell: wait for it before each cell "
                        "(see --quiet-wait) and, with --resume, rerun cells measured above it")
    p.add_argument("--quiet-wait", type=float, default=0.0, help="seconds to wait at most for a quiet machine before a cell")
    p.add_argument("--resume", action="store_true", help="keep the measured cells of an existing results file, run the rest")
    p.add_argument("--dry-run", action="store_true", help="list the cells and what this machine can run, run nothing")


@command("bench run", "Run the benchmark matrix: latency, throughput, smear time, memory, accuracy per cell")
def _bench_run(p: argparse.ArgumentParser):
    _bench_run_arguments(p)

    def run(args) -> int:
        from bcedge.bench.matrix import get_profile, precheck
        from bcedge.bench.runner import (
            RunOptions,
            existing_checkpoints,
            run_matrix,
            with_overrides,
        )

        profile = with_overrides(get_profile(args.profile), archs=args.archs, runners=args.runners,
                                 precisions=args.precisions, batches=args.batch, tiles=args.tile,
                                 accuracy_split=args.split, min_time_s=args.min_time,
                                 min_iterations=args.iterations, warmup=args.warmup)
        if args.dry_run:
            for cell in profile.cells():
                print(f"{cell.key}: {precheck(cell) or 'to run'}")
            return 0
        if args.data is not None and not args.data.exists():
            raise UserError(f"{args.data}: no such dataset")
        options = RunOptions(out=args.out, checkpoints=existing_checkpoints(dict(args.checkpoint)), data=args.data,
                             calib_dirs=tuple(args.calib), name=args.name, note=args.note,
                             max_contention=args.max_contention, quiet_wait_s=args.quiet_wait, resume=args.resume)
        if args.work is not None:
            options.work = args.work
        results = run_matrix(profile, options)
        ok = sum(c["status"] == "ok" for c in results["cells"])
        print(f"{ok} of {len(results['cells'])} cells measured; results in {results['files']['json']}")
        return 0 if ok or not results["cells"] else 1   # nothing measured: a script running it must notice

    return run


@command("bench report", "Write the markdown table and Pareto plot (PNG) of a benchmark results file")
def _bench_report(p: argparse.ArgumentParser):
    p.add_argument("results", type=Path, help="results JSON from `bcedge bench run`")
    p.add_argument("--out", type=Path, default=None, help="output stem (default: beside the JSON)")

    def run(args) -> int:
        from bcedge.bench.report import load, write_all

        md, png = write_all(load(args.results), args.out or args.results.with_suffix(""))
        print(f"wrote {md} and {png}")
        return 0

    return run


@command("bench compare", "Put benchmark results from different machines side by side (markdown)")
def _bench_compare(p: argparse.ArgumentParser):
    p.add_argument("results", type=Path, nargs="+", help="results JSON files; the first is the reference")
    p.add_argument("--labels", nargs="+", default=None, help="a column label per file")
    p.add_argument("--out", type=Path, default=None, help="write the markdown here (default: print)")

    def run(args) -> int:
        from bcedge.bench.report import compare, load

        if args.labels and len(args.labels) != len(args.results):
            raise UserError(f"{len(args.labels)} labels for {len(args.results)} results files")
        text = compare([load(path) for path in args.results], args.labels)
        if args.out:
            args.out.write_text(text)
            print(f"wrote {args.out}")
        else:
            print(text, end="")
        return 0

    return run


@command("bench machine", "Describe this machine as benchmark files record it (CPU, GPU, driver, libraries, Jetson)")
def _bench_machine(p: argparse.ArgumentParser):
    def run(args) -> int:
        import json

        from bcedge.bench.machine import describe_machine

        print(json.dumps(describe_machine(), indent=1))
        return 0

    return run
