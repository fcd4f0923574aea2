"""End-to-end throughput (image Mpx/s) of counting whole synthetic smear files, old vs new default,
FP32 and INT8, on the same files (default 4096x3072 and 16384x16384).

Each measurement is a fresh child process (``Counter.load(model)``, warm-up, then ``count_file``:
reading the PNG by strips, the scale estimate, resampling, tiles, inference, decoding, merge), with
the Counter's defaults (batch 4, ONNX Runtime's default threads, automatic scale and tile size), so
it is what a user gets. Models take turns, in a rotating order, so a shared machine's load hits all
alike. The smears are drawn at the BCCD scale (red cells ~100 px): the old default counts them as
they are, the new one resamples them to its own scale, which the result records (``scale``).

    nice -n 10 python benchmarks/smear_throughput.py --new default --new-int8 default-int8
    python benchmarks/smear_throughput.py --sizes 2048x1536 --repeats 1 --results /tmp/r   # a quick look

Results: ``benchmarks/results/smear_throughput_<machine>.{json,md}``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _common import RESULTS, header, load_truth, log, parse_size, run_child_json, smear, write_results
from _peer_models import OLD_DEFAULT, OLD_DEFAULT_INT8, model_file

from bcedge.bench.contention import Contention
from bcedge.bench.machine import describe_machine, machine_slug

_CHILD = r"""
import json, resource, sys, time
from bcedge.runtime.counter import Counter

model, image, counts = sys.argv[1], sys.argv[2], int(sys.argv[3])
counter = Counter.load(model, device="cpu")
counter.warmup()
seconds, result = [], None
for _ in range(counts):
    started = time.perf_counter()
    result = counter.count_file(image)
    seconds.append(time.perf_counter() - started)
d = result.to_dict()
print(json.dumps({"seconds": seconds, "tiles": result.tiles, "tile": d["image"]["tile"], "scale": d["scale"],
                  "overlap": counter.overlap, "batch_size": counter.batch_size, "counts": result.counts,
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "backend": counter.backend.describe()}))
"""


def markdown(report: dict) -> str:
    lines = header("End-to-end throughput on synthetic smears: old vs new default", report["machine"],
                   "Counting a whole PNG smear file with `Counter.count_file` (defaults: batch 4, automatic "
                   "scale and tile size, ONNX Runtime's default threads), one fresh process per measurement, "
                   "models taking turns. Mpx/s = image megapixels / seconds (the best of the repeats; median in "
                   "brackets). \"Others' CPU share\": the share of the whole CPU other processes used during each "
                   f"run. {report['machine'].get('note', '')}")
    for size, runs in report["sizes"].items():
        lines += [f"## {size} ({runs['megapixels']} Mpx, red cells ~100 px: BCCD scale)", "",
                  "| model | s | Mpx/s | tiles | tile | overlap | scale | peak RSS MB | others' CPU share | counts |",
                  "|---|---:|---:|---:|---|---:|---|---:|---|---|"]
        for name, r in runs["models"].items():
            s = r["scale"] or {}
            scale = f"{s.get('factor')} ({s.get('method')}, {s.get('passes')} pass)" if s else ""
            counts = ", ".join(f"{k} {v}" for k, v in r["counts"].items())
            lines.append(f"| {name} | {r['best_s']} ({r['median_s']}) | {r['mpx_per_s']} ({r['median_mpx_per_s']}) | "
                         f"{r['tiles']} | {r['tile']} | {r['overlap']} | {scale} | {r['peak_rss_mb']} | "
                         f"{', '.join(_pct(v) for v in r['others_cpu_share'])} | {counts} |")
        truth = ", ".join(f"{k} {v}" for k, v in runs["truth"].items())
        lines += ["", f"Cells drawn (ground truth): {truth}. Counts are shown to confirm both models counted the "
                  "same smear; accuracy is measured on the real validation sets, not here.", "",
                  "| speed-up new vs old (Mpx/s) | ratio | target |", "|---|---:|---|"]
        for label, ratio in runs["speedups"].items():
            lines.append(f"| {label} | {ratio:.2f}x | >= 3x: {'yes' if ratio >= 3 else '**no**'} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _pct(share: float | None) -> str:
    return "?" if share is None else f"{100 * share:.0f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new", default="default")
    parser.add_argument("--new-int8", default="default-int8")
    parser.add_argument("--old", default=OLD_DEFAULT)
    parser.add_argument("--old-int8", default=OLD_DEFAULT_INT8)
    parser.add_argument("--sizes", nargs="+", default=["4096x3072", "16384x16384"])
    parser.add_argument("--repeats", type=int, nargs="+", default=[2, 1],
                        help="rounds per size (one value for all, or one per size)")
    parser.add_argument("--counts", type=int, default=2,
                        help="counts per process on images up to 50 Mpx (the first warms the tile shapes); larger: 1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default="shared 2-core machine: other agents' jobs ran alongside; run with nice -n 10")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", default=None, help="default: smear_throughput_<machine>")
    args = parser.parse_args(argv)

    models = {"old default FP32": model_file(args.old), "new default FP32": model_file(args.new),
              "old default INT8": model_file(args.old_int8), "new default INT8": model_file(args.new_int8)}
    desc = describe_machine(args.note)
    report = {"machine": desc, "models": {k: str(v) for k, v in models.items()}, "sizes": {}}
    stem = args.name or f"smear_throughput_{machine_slug(desc, with_isa=True)}"
    repeats = args.repeats if len(args.repeats) == len(args.sizes) else args.repeats[:1] * len(args.sizes)
    for size, rounds in zip(args.sizes, repeats):
        width, height = parse_size(size)
        image = smear(width, height, seed=args.seed)
        counts = args.counts if width * height <= 50e6 else 1
        mpx = width * height / 1e6
        samples: dict[str, list] = {name: [] for name in models}
        names = list(models)
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                log(f"{size} round {r + 1}/{rounds}: {name} ...")
                started = time.perf_counter()
                with Contention() as busy:
                    out = run_child_json(_CHILD, [str(models[name]), str(image), str(counts)], f"{name} on {image.name}")
                out["others_cpu_share"] = busy.share
                log(f"  {out['seconds'][-1]:.1f} s counting ({time.perf_counter() - started:.0f} s with start-up), "
                    f"{out['tiles']} tiles of {out['tile']}, scale {out['scale']}, others used {busy.share} of the CPU")
                samples[name].append(out)
        rows = {}
        for name, outs in samples.items():
            times = [o["seconds"][-1] for o in outs]
            last = outs[-1]
            rows[name] = {**{k: last[k] for k in ("tiles", "tile", "overlap", "scale", "counts", "batch_size", "backend")},
                          "best_s": round(min(times), 2), "median_s": round(statistics.median(times), 2),
                          "mpx_per_s": round(mpx / min(times), 2), "median_mpx_per_s": round(mpx / statistics.median(times), 2),
                          "peak_rss_mb": max(o["peak_rss_mb"] for o in outs), "all_seconds": [o["seconds"] for o in outs],
                          "others_cpu_share": [o["others_cpu_share"] for o in outs]}
        speedups = {f"{p}": rows[f"new default {p}"]["mpx_per_s"] / rows[f"old default {p}"]["mpx_per_s"]
                    for p in ("FP32", "INT8")}
        report["sizes"][size] = {"image": str(image), "megapixels": round(mpx, 1), "rounds": rounds,
                                 "truth": load_truth(image).counts,
                                 "counts_per_process": counts, "models": rows,
                                 "speedups": {k: round(v, 3) for k, v in speedups.items()}}
        write_results(stem, report, markdown(report), args.results)   # after each size: a long run keeps what it did
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
