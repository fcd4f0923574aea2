"""Reproduce the benchmark matrix of this repository: one command per machine kind.

    nice -n 10 python benchmarks/run_matrix.py                    # the CPU table and plot (profile cpu)
    python benchmarks/run_matrix.py --profile gpu                 # a CUDA machine (torch, ORT EPs, TensorRT)
    python benchmarks/run_matrix.py --profile jetson              # a Jetson: power mode, tegrastats/jtop
    python benchmarks/run_matrix.py --profile quick               # a smoke test in about a minute

It is ``bcedge bench run`` with this repository's defaults: the BCCD dataset for accuracy (val) and
INT8 calibration (calibration/bccd_640x480, else built from train; the scale-aware FCOS-Lite calibrates on
the train frames resampled to its own scale), and the trained checkpoints committed under
export/checkpoints/, trained on BCCD train (benchmarks/results/training_runs.md; an architecture without
one is timed but reported "not trained"). Any other
``bcedge bench run`` option passes through (``--archs``, ``--runners``, ``--batch``, ``--tile``...).
Writes ``benchmarks/results/matrix_<profile>_<machine>.{json,md,png}``; put files from different
machines side by side with ``bcedge bench compare A.json B.json``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bcedge.cli import main as bcedge_main  # noqa: E402

DATA = Path(os.environ.get("BCEDGE_BENCH_DATA", "/work/shared/data/bccd"))
TRAINED = ROOT / "export" / "checkpoints"
CHECKPOINTS = {                      # architecture -> trained checkpoint (committed; last epoch of each run)
    "fcos_efficientnet_lite0": TRAINED / "fcos_efficientnet_lite0_bccd" / "checkpoint.pt",
    "fcos_lite_efficientnet_lite0": TRAINED / "fcos_lite_efficientnet_lite0_bccd" / "checkpoint.pt",
    "faster_rcnn_efficientnet_lite0": TRAINED / "faster_rcnn_efficientnet_lite0_bccd" / "checkpoint.pt",
    "ssdlite_efficientnet_lite0": TRAINED / "ssdlite_efficientnet_lite0_bccd" / "checkpoint.pt",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--data", type=Path, default=DATA)
    known, rest = parser.parse_known_args()
    argv = ["bench", "run", "--profile", known.profile, "--out", str(ROOT / "benchmarks" / "results")]
    if known.data.exists():
        argv += ["--data", str(known.data)]
    else:
        print(f"note: {known.data} not found: accuracy is not measured and INT8 uses only calibration/ sets",
              file=sys.stderr)
    for arch, path in CHECKPOINTS.items():
        argv += ["--checkpoint", f"{arch}={path}"]
    argv += ["--calib", str(ROOT / "calibration" / "bccd_640x480")]
    return bcedge_main(argv + rest)


if __name__ == "__main__":
    sys.exit(main())
