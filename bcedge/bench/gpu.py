"""Pieces of the prepared GPU check (``benchmarks/gpu_check.py``): a results record that survives a
failing section, the synthetic boxes, timing under a deadline, detection matching and the Markdown.

Nothing here imports torch, numba or CuPy at import time: the check sets ``NUMBA_ENABLE_CUDASIM``
for its dry run before anything loads numba.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bcedge.boxes import pairwise_iou
from bcedge.detections import Detections


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Record:
    """The check's results: one dict per section, written (JSON and Markdown) after every section, so
    a run cut short still leaves what it measured. A section that raises keeps its error and the
    rest runs."""

    def __init__(self, out_dir: Path, stem: str, max_seconds: float, header: dict) -> None:
        self.out_dir, self.stem = Path(out_dir), stem
        self.started = time.perf_counter()
        self.deadline = time.time() + max_seconds  # wall clock, like every deadline in the check
        self.data: dict = {**header, "sections": {}, "targets": {}}

    def remaining(self) -> float:
        return self.deadline - time.time()

    @contextmanager
    def section(self, name: str, budget_s: float):
        """Yields (the section's dict, its deadline); errors land in the dict as ``error``."""
        entry: dict = {"budget_s": round(budget_s, 1)}
        self.data["sections"][name] = entry
        started = time.perf_counter()
        deadline = min(time.time() + budget_s, self.deadline)
        log(f"== {name} (budget {budget_s:.0f} s, {self.remaining():.0f} s left overall)")
        try:
            yield entry, deadline
        except Exception as exc:  # noqa: BLE001 - one failing section must not lose the others
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["traceback"] = traceback.format_exc(limit=6)[-3000:]
            log(f"   {name} FAILED: {entry['error']}")
        entry["seconds"] = round(time.perf_counter() - started, 2)
        log(f"   {name} done in {entry['seconds']} s")
        self.write()

    def write(self) -> tuple[Path, Path]:
        self.data["elapsed_s"] = round(time.perf_counter() - self.started, 1)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        json_path = self.out_dir / f"{self.stem}.json"
        md_path = self.out_dir / f"{self.stem}.md"
        json_path.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        md_path.write_text(to_markdown(self.data))
        return json_path, md_path


def timed(fn: Callable[[], object], deadline: float, min_runs: int = 3, max_runs: int = 20, min_total_s: float = 0.5,
          warmup: int = 1, sync: Callable[[], None] | None = None) -> dict:
    """Warm up, then run ``fn`` until ``min_runs`` and ``min_total_s`` are met (or ``max_runs``, or the
    deadline after the first timed run); milliseconds, median and min. ``sync`` waits for the device."""
    started = time.perf_counter()
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    first_s = time.perf_counter() - started
    if warmup and time.time() > deadline:  # a slow call: its warm-up is all the budget allows
        return {"median_ms": round(first_s / warmup * 1e3, 4), "min_ms": round(first_s / warmup * 1e3, 4),
                "runs": 0, "note": "warm-up call only (budget spent; includes any compilation)"}
    runs: list[float] = []
    while len(runs) < max_runs:
        started = time.perf_counter()
        fn()
        if sync:
            sync()
        runs.append(time.perf_counter() - started)
        enough = len(runs) >= min_runs and sum(runs) >= min_total_s
        if enough or time.time() > deadline:
            break
    return {"median_ms": round(statistics.median(runs) * 1e3, 4), "min_ms": round(min(runs) * 1e3, 4),
            "runs": len(runs)}


# --- synthetic boxes ---------------------------------------------------------------------------------

def candidate_boxes(n: int, seed: int = 0, per_cell: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` detector candidates before NMS: cells on a jittered 40 px lattice (20-38 px boxes, some
    touching), each seen ``per_cell`` times with boxes jittered by up to 3 px and distinct scores;
    classes 90% / 2% / 8% like red cells, white cells, platelets."""
    rng = np.random.default_rng(seed)
    cells = max(1, n // per_cell)
    side = int(np.ceil(np.sqrt(cells)))
    iy, ix = np.divmod(np.arange(cells), side)
    centres = (np.stack([ix, iy], 1) + 0.5 + rng.uniform(-0.2, 0.2, (cells, 2))) * 40.0
    size = rng.uniform(20.0, 38.0, (cells, 2))
    boxes = np.concatenate([centres - size / 2, centres + size / 2], 1)
    classes = rng.choice(3, cells, p=(0.90, 0.02, 0.08))
    pick = np.arange(n) % cells
    xyxy = (boxes[pick] + rng.uniform(-3, 3, (n, 4))).astype(np.float32)
    xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2] + 1)
    scores = rng.uniform(0.05, 1.0, n).astype(np.float32)
    return xyxy, scores, classes[pick].astype(np.int64)


# --- comparing detections ----------------------------------------------------------------------------

def match(reference: Detections, other: Detections, iou: float = 0.9) -> dict:
    """Greedy one-to-one matching per class (reference by score, best IoU >= ``iou``)."""
    matched, worst = 0, 1.0
    for cls in np.union1d(reference.class_ids, other.class_ids):
        ref, oth = reference[reference.class_ids == cls], other[other.class_ids == cls]
        if not len(ref) or not len(oth):
            continue
        ious = pairwise_iou(ref.xyxy, oth.xyxy)
        taken = np.zeros(len(oth), bool)
        for i in np.argsort(-ref.scores, kind="stable"):
            row = np.where(taken, -1.0, ious[i])
            j = int(np.argmax(row))
            if row[j] >= iou:
                taken[j] = True
                matched += 1
                worst = min(worst, float(row[j]))
    return {"reference": len(reference), "other": len(other), "matched": matched,
            "all_matched": matched == len(reference) == len(other), "worst_matched_iou": round(worst, 4)}


# --- the Markdown ------------------------------------------------------------------------------------

def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def _table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(row.get(k, "")) for k in keys) + " |" for row in rows]
    return lines + [""]


def to_markdown(data: dict) -> str:
    m = data.get("machine", {})
    lines = [f"# GPU check: {m.get('gpu', {}).get('name', 'no GPU')}", "",
             f"Mode: **{data.get('mode')}**; commit `{data.get('commit')}`; {data.get('elapsed_s')} s in all. "
             f"Command: `{data.get('command')}`", "",
             "## Machine", "", *_table([{k: v for k, v in m.items() if not isinstance(v, dict)}]),
             *_table([m["gpu"]] if m.get("gpu") else []), "## Targets", "",
             *_table([{"target": k, **v} for k, v in data.get("targets", {}).items()])]
    for name, entry in data.get("sections", {}).items():
        lines += [f"## {name}", ""]
        scalars = {k: v for k, v in entry.items() if not isinstance(v, (list, dict)) and k != "traceback"}
        lines += _table([scalars])
        for key, value in entry.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                lines += [f"**{key}**", "", *_table(value)]
            elif isinstance(value, dict):
                lines += [f"**{key}**: `{json.dumps(value, default=str)}`", ""]
        if "traceback" in entry:
            lines += ["```", entry["traceback"].rstrip(), "```", ""]
    return "\n".join(lines) + "\n"


def python_command() -> str:
    return " ".join([Path(sys.executable).name, *sys.argv])
