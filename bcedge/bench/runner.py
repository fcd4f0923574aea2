"""Run a benchmark profile: build the artifacts, measure every cell in its own process, write the results.

    from bcedge.bench.matrix import get_profile
    from bcedge.bench.runner import RunOptions, run_matrix
    results = run_matrix(get_profile("cpu"), RunOptions(out=Path("benchmarks/results"),
                                                        checkpoints={"fcos_efficientnet_lite0": Path("best.pt")}))

The results file is rewritten after every cell, so an interrupted run keeps what it measured. Accuracy
is measured once per (architecture, runner, precision, tile) in the first batch size's cell and copied to
the others (``accuracy.from_batch``), only for trained architectures at their own input size (any tile
for a dynamic-input model); the rest say ``not trained`` (weights do not change speed, so untrained
models are timed, never scored). A scale-aware model counts the smear at its own scale and with its own
overlap (its largest trained cell, in its pixels), as ``bcedge count`` would.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from bcedge.atomic import atomic_open, atomic_write_text
from bcedge.bench.artifacts import (ArtifactSet, BuildContext, calibration_for, prepare, scale_aware_meta,
                                    scaled_calibration_for)
from bcedge.bench.contention import Contention, wait_for_quiet
from bcedge.bench.machine import describe_machine, machine_slug
from bcedge.bench.matrix import Cell, Profile, artifact_kind, precheck, runner_reason

FORMAT, VERSION = "bcedge-bench", 1
REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunOptions:
    out: Path                                            # results folder
    work: Path = Path(tempfile.gettempdir()) / "bcedge-bench-matrix"   # artifact cache
    checkpoints: dict[str, Path] = field(default_factory=dict)  # arch -> trained checkpoint (missing files ignored)
    data: Path | None = None                             # labelled dataset (accuracy, calibration)
    calib_dirs: tuple[Path, ...] = ()                    # calibration sets to reuse, by tile size
    name: str | None = None                              # results file stem (default matrix_<profile>_<machine>)
    note: str = ""
    python: str = sys.executable
    max_contention: float | None = None                  # other processes' CPU share a measured cell may see
    quiet_wait_s: float = 0.0                            # wait up to this long before a cell for a quieter machine
    resume: bool = False                                 # keep the results file's cells (contended ones are rerun)


def with_overrides(profile: Profile, min_time_s: float | None = None, min_iterations: int | None = None,
                   warmup: int | None = None, **changes) -> Profile:
    """The profile with some fields (archs, runners, batches, tiles...) and timing settings replaced; None keeps."""
    timing = {k: v for k, v in (("min_time_s", min_time_s), ("min_iterations", min_iterations), ("warmup", warmup))
              if v is not None}
    if timing:
        current = profile.timing
        timing["max_iterations"] = max(current.max_iterations, timing.get("min_iterations", 0))
        timing["max_time_s"] = max(current.max_time_s, 2 * timing.get("min_time_s", 0))
        changes["timing"] = replace(current, **timing)
    changes = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
    return profile.with_options(**changes)


def existing_checkpoints(mapping: dict[str, str | Path]) -> dict[str, Path]:
    """The entries of arch -> checkpoint whose file exists (a model still to be trained is simply absent)."""
    return {arch: Path(path) for arch, path in mapping.items() if Path(path).is_file()}


def smear_array(size: tuple[int, int], work: Path) -> Path:
    """The synthetic smear (seed 0) the end-to-end time counts, cached as .npy for the cell processes."""
    path = work / f"smear_{size[0]}x{size[1]}_seed0.npy"
    if not path.is_file():
        from bcedge.data.synth import generate_smear

        work.mkdir(parents=True, exist_ok=True)
        pixels = generate_smear(size[0], size[1], seed=0).pixels
        with atomic_open(path, "wb") as handle:
            np.save(handle, pixels)
    return path


def _keep_previous(entry: dict, max_contention: float | None) -> bool:
    """A cell from an earlier run is kept when it was measured (on a quiet enough machine)."""
    if entry.get("status") != "ok":
        return False
    share = entry.get("other_cpu_share")
    return max_contention is None or share is None or share <= max_contention


def _run_process(options: RunOptions, spec: dict, timeout: float) -> dict:
    """One cell in a fresh interpreter; a crash or timeout becomes a ``failed: ...`` status."""
    with tempfile.TemporaryDirectory(prefix="bcedge-cell-") as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        try:
            proc = subprocess.run([options.python, "-m", "bcedge.bench.cell", str(spec_path), str(out_path)], env=env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"status": f"failed: timed out after {timeout:.0f} s"}
        if out_path.is_file():
            return json.loads(out_path.read_text())
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
        return {"status": f"failed: cell process {how}: {' | '.join(tail)}"[:400]}


def _accuracy_plan(cell: Cell, artifacts: ArtifactSet, data: Path | None, first_batch: int) -> tuple[bool, dict | None]:
    """(measure here?, the accuracy entry when not measured)."""
    if not artifacts.trained:
        return False, {"status": "not trained"}
    fixed_input = not artifacts.dynamic_input     # a dynamic-input model runs any tile with its trained weights
    if fixed_input and artifacts.trained_input_size and tuple(artifacts.trained_input_size) != cell.tile:
        return False, {"status": f"not measured: trained at {artifacts.trained_input_size[0]}x"
                                 f"{artifacts.trained_input_size[1]}, this tile is {cell.tile[0]}x{cell.tile[1]}"}
    if data is None or not data.exists():
        return False, {"status": "not measured: no labelled dataset here"}
    if cell.batch != first_batch:
        return False, None      # copied from the first batch's cell
    return True, None


class MatrixRun:
    """State of one run: the results dict, written after every cell."""

    def __init__(self, profile: Profile, options: RunOptions, log: Callable[[str], None]) -> None:
        self.profile, self.options, self.log = profile, options, log
        machine = describe_machine(options.note)
        self.stem = options.name or f"matrix_{profile.name}_{machine_slug(machine)}"
        self.reasons = {runner: runner_reason(*runner.split(":", 1)) for runner in profile.runners}
        self.results = {"format": FORMAT, "version": VERSION, "profile": profile.to_dict(), "machine": machine,
                        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "runners": {r: reason or "available" for r, reason in self.reasons.items()},
                        "checkpoints": {a: str(p) for a, p in options.checkpoints.items()},
                        "accuracy_data": f"{options.data} ({profile.accuracy_split})" if options.data else None,
                        "artifacts": {}, "cells": []}

    @property
    def json_path(self) -> Path:
        return self.options.out / f"{self.stem}.json"

    def save(self) -> None:
        self.options.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.json_path, json.dumps(self.results, indent=1) + "\n", durable=False)

    def build(self, arch: str, tile: tuple[int, int], cells: list[Cell]) -> ArtifactSet:
        kinds = {artifact_kind(c) for c in cells if precheck(c, self.reasons) is None}
        calib, why = self.calibration(arch, tile) if any("int8" in k for k in kinds) else (None, "")
        high = max(self.profile.batches)
        context = BuildContext(calib=calib, calib_limit=self.profile.untrained_calib_limit,
                               engine_batch=(1, high, high), calib_error=why)
        artifacts = prepare(arch, tile, self.options.work, kinds, self.options.checkpoints.get(arch), context, self.log)
        self.results["artifacts"][f"{arch}_{tile[0]}x{tile[1]}"] = {**artifacts.describe(),
                                                                     "calibration": str(calib) if calib else why or None}
        return artifacts

    def calibration(self, arch: str, tile: tuple[int, int]) -> tuple[Path | None, str]:
        """The INT8 calibration set: training frames at a scale-aware model's own scale and trained input size,
        else tiles of ``tile`` (an existing set, or one built from the training split)."""
        meta = scale_aware_meta(self.options.checkpoints.get(arch))
        if meta is not None:
            return scaled_calibration_for(meta.pixel_scale["cell_px"], tuple(meta.input_size), self.options.data, "train",
                                          self.options.work, meta.pad_value)
        candidates = [*self.options.calib_dirs, REPO / "calibration" / f"bccd_{tile[0]}x{tile[1]}"]
        return calibration_for(tile, candidates, self.options.data, "train", self.options.work, self.profile.calib_count)

    def smear_overlap(self, cell: Cell, artifacts: ArtifactSet) -> int | None:
        """The profile's overlap (model pixels, alike for every model so tile counts match); None, the model's own
        (its largest trained cell at its scale), for a scale-aware model, whose pixels are not the smear's."""
        if artifacts.scale_aware:
            return None
        return min(self.profile.smear_overlap, min(cell.tile) // 2 - 1)

    def measure(self, cell: Cell, artifacts: ArtifactSet, smear: Path, fallback: dict | None = None) -> dict:
        """Run the cell; with a ``fallback`` (its earlier, contended result), only when the machine gets quiet."""
        kind = artifact_kind(cell)
        status = precheck(cell, self.reasons) or artifacts.status(kind)
        entry = {**cell.to_dict(), "key": cell.key, "two_stage": artifacts.two_stage, "trained": artifacts.trained,
                 "dynamic_input": artifacts.dynamic_input, "working_scale_cell_px": artifacts.cell_px}
        if status:
            return {**entry, "status": status}
        path = artifacts.files[kind]
        if self.options.max_contention is not None and self.options.quiet_wait_s > 0:
            waited, quiet = wait_for_quiet(self.options.max_contention, self.options.quiet_wait_s, self.log)
            if not quiet and fallback is not None:
                return {**fallback, "rerun_skipped": f"machine still busy after {waited:.0f} s"}
            entry["waited_for_quiet_s"] = waited
        entry.update({"artifact": path.name, "size_mb": round(path.stat().st_size / 2**20, 2)})
        if kind in artifacts.notes:
            entry["artifact_note"] = artifacts.notes[kind]
        measure_accuracy, accuracy = _accuracy_plan(cell, artifacts, self.options.data, min(self.profile.batches))
        spec = {**cell.to_dict(), "artifact": str(path), "smear": str(smear), "timing": self.profile.timing.to_dict(),
                "e2e_runs": self.profile.e2e_runs, "power": self.profile.power,
                "smear_overlap": self.smear_overlap(cell, artifacts),
                "accuracy": {"data": str(self.options.data), "split": self.profile.accuracy_split} if measure_accuracy else None}
        with Contention() as contention:
            entry.update(_run_process(self.options, spec, self.profile.cell_timeout_s))
        entry["other_cpu_share"] = contention.share
        if accuracy is not None:
            entry["accuracy"] = accuracy
        return entry


def _copy_accuracy(cells: list[dict]) -> None:
    """Give every batch size's cell the accuracy its (arch, runner, precision, tile) measured once."""
    def key(c: dict) -> tuple:
        return c["arch"], c["backend"], c["device"], c["precision"], tuple(c["tile"])

    measured: dict[tuple, dict] = {}
    for c in cells:
        if "accuracy" in c:
            measured.setdefault(key(c), c)
    for c in cells:
        if c["status"] != "ok" or "accuracy" in c:
            continue
        source = measured.get(key(c))
        c["accuracy"] = ({**source["accuracy"], "from_batch": source["batch"]} if source
                         else {"status": "not measured: the first batch size's cell did not finish"})


def run_matrix(profile: Profile, options: RunOptions, log: Callable[[str], None] = print) -> dict:
    """Run every cell of ``profile``; writes ``<out>/<stem>.json`` (and .md, .png via ``report``)."""
    from bcedge.bench import report

    run = MatrixRun(profile, options, log)
    started = time.perf_counter()
    cells = profile.cells()
    log(f"{len(cells)} cells, profile {profile.name}; results -> {run.json_path}")
    previous: dict[str, dict] = {}
    contended: dict[str, dict] = {}
    if options.resume and run.json_path.is_file():
        earlier = report.load(run.json_path)
        previous = {c["key"]: c for c in earlier["cells"] if _keep_previous(c, options.max_contention)}
        contended = {c["key"]: c for c in earlier["cells"] if c.get("status") == "ok" and c["key"] not in previous}
        run.results.update({k: earlier[k] for k in ("machine", "started", "artifacts") if k in earlier})
        run.results["resumed"] = [*earlier.get("resumed", []), {
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "kept": len(previous),
            "load_average": [round(x, 2) for x in os.getloadavg()]}]
        run.results["wall_s_earlier_passes"] = earlier.get("wall_s_earlier_passes", 0.0) + earlier.get("wall_s", 0.0)
        log(f"resuming: {len(previous)} measured cells kept, the others run again")
    smear = smear_array(profile.smear, options.work)
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.arch, cell.tile), []).append(cell)
    done = 0
    for (arch, tile), group in groups.items():
        todo = [c for c in group if c.key not in previous]
        artifacts = run.build(arch, tile, todo) if todo else None
        for cell in group:
            entry = previous.get(cell.key) or run.measure(cell, artifacts, smear, contended.get(cell.key))
            run.results["cells"].append(entry)
            done += 1
            log(f"[{done}/{len(cells)}] {cell.key}: {report.cell_line(entry)}")
            run.save()
    _copy_accuracy(run.results["cells"])
    run.results["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    run.results["wall_s"] = round(time.perf_counter() - started, 1)
    run.results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    md, png = report.write_all(run.results, options.out / run.stem)
    run.results["files"] = {"json": str(run.json_path), "markdown": str(md), "plot": str(png)}
    run.save()
    log(f"wrote {run.json_path}, {md} and {png}")
    return run.results
