"""Peak memory and time of generating a huge synthetic smear (default 16384 x 16384) to PNG and TIFF.

Each run happens in its own child process, which reports its own peak RSS (``ru_maxrss``) and the
RSS right after imports, so runs do not inherit each other's peaks. Results go to
``benchmarks/results/synth_memory_cpu.json`` and ``.md``. Goal: peak well under 2 GB.

    nice -n 10 python benchmarks/synth_memory.py                     # 16384 x 16384, png and tif
    python benchmarks/synth_memory.py --size 2048x2048 --formats png  # a quick look
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, run_child_json

from bcedge.bench.machine import describe_machine, machine_line

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from bcedge.data.synth import generate_smear, make_layout, SmearConfig
width, height, seed, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
layout = make_layout(width, height, seed, SmearConfig(parasites=True))
layout_s = time.perf_counter() - t
del layout
t = time.perf_counter()
result = generate_smear(width, height, seed=seed, out=out, parasites=True)
total_s = time.perf_counter() - t
print(json.dumps({
    "seconds": round(total_s, 2), "layout_seconds": round(layout_s, 2),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "rss_after_imports_mb": round(rss_imports, 1),
    "image_mb": round(out.stat().st_size / 2**20, 1),
    "labels_mb": round(result.labels_path.stat().st_size / 2**20, 1),
    "counts": result.counts,
}))
"""


def run_one(width: int, height: int, seed: int, out: Path) -> dict:
    return run_child_json(_CHILD, [str(width), str(height), str(seed), str(out)], f"generating {out.name}")


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"# Synthetic smear generation: memory and time ({report['width']} x {report['height']}, parasites on)",
        "",
        f"Machine: {machine_line(m)}; Python {m['python']}, "
        f"{', '.join(f'{k} {v}' for k, v in m['libraries'].items())}. Run with `nice -n 10` while other jobs "
        f"shared the CPU; date {report['date']}.",
        "",
        "| format | time (s) | layout (s) | peak RSS (MB) | RSS after imports (MB) | image (MB) | labels (MB) "
        "| cells |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fmt, r in report["runs"].items():
        cells = ", ".join(f"{k} {v}" for k, v in r["counts"].items())
        lines.append(f"| {fmt} | {r['seconds']} | {r['layout_seconds']} | {r['peak_rss_mb']} | "
                     f"{r['rss_after_imports_mb']} | {r['image_mb']} | {r['labels_mb']} | {cells} |")
    lines += ["", "Peak RSS is the whole process (Python, numpy, OpenCV included). Goal: well under 2 GB.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="16384x16384", help="WIDTHxHEIGHT")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--formats", nargs="+", default=["png", "tif"])
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for synth_memory_cpu.{json,md}")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    report = {"width": width, "height": height, "seed": args.seed, "date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": describe_machine(), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="bcedge-synth-bench-") as tmp:
        for fmt in args.formats:
            out = Path(tmp) / f"smear.{fmt}"
            print(f"generating {width}x{height} -> {out.name} ...", file=sys.stderr, flush=True)
            report["runs"][fmt] = run_one(width, height, args.seed, out)
            print(f"  {report['runs'][fmt]}", file=sys.stderr, flush=True)
            out.unlink()
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "synth_memory_cpu.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.results / "synth_memory_cpu.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
