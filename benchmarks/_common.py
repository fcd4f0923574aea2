"""The benchmark scripts' plumbing: this checkout importable, where results and the cache live, logging,
child processes, sizes on the command line, result files and their machine header.

The other shared pieces live by concern: ``_smears`` (cached synthetic smears and their ground truth),
``_models`` (the model to run), ``_matching`` (detections against ground truth); the test doubles
(``OracleBackend``, ``TileRecorder``, ``StubCounter``) in ``bcedge.testing``. Benchmarks import these
as ``from _common import ...`` (``python benchmarks/x.py`` puts this folder on ``sys.path``). Nothing
here is part of the installed library.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bcedge.bench.machine import describe_machine, machine_line  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
CACHE = Path(os.environ.get("BCEDGE_BENCH_CACHE", "/tmp/bcedge-bench"))


def run_child_json(code: str, args: list[str], what: str) -> dict:
    """Run ``code`` in a fresh Python (this repository importable) and parse the JSON of its last stdout line.

    A fresh process per measurement keeps peak memory (``ru_maxrss``) its own."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_size(text: str) -> tuple[int, int]:
    """``4096x3072`` -> (4096, 3072)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT") from None
    return width, height


def write_results(stem: str, report: dict, markdown: str, results: Path = RESULTS) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stem}.json").write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")
    (results / f"{stem}.md").write_text(markdown)
    log(f"wrote {results / stem}.json and .md")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def machine(note: str = "") -> dict:
    return describe_machine(note)


def header(title: str, desc: dict, extra: str = "") -> list[str]:
    lines = [f"# {title}", "", f"Machine: {machine_line(desc)}; {desc['platform']}, Python {desc['python']}; "
             f"libraries {', '.join(f'{k} {v}' for k, v in desc['libraries'].items())}; load average at start "
             f"{desc['load_average_at_start']}. Date {time.strftime('%Y-%m-%d %H:%M')}."]
    if extra:
        lines += ["", extra]
    return lines + [""]


# Names that moved to the modules above (issue 19); scripts that still import them from here get them.
_MOVED = {"Truth": ("bcedge.testing.oracle", "Truth"), "OracleBackend": ("bcedge.testing.oracle", "OracleBackend"),
          "TileRecorder": ("bcedge.testing.recorder", "TileRecorder"), "smear": ("_smears", "smear"),
          "load_truth": ("_smears", "load_truth"), "resolve_model": ("_models", "benchmark_model"),
          "cut_cells": ("_matching", "cut_cells"), "match": ("_matching", "match"), "prf": ("_matching", "prf")}


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module '_common' has no attribute {name!r}")
    import importlib

    module, attribute = _MOVED[name]
    return getattr(importlib.import_module(module), attribute)
