"""Measure one matrix cell in this (fresh) process: ``python -m bcedge.bench.cell SPEC.json OUT.json``.

A fresh process per cell makes its peak host memory its own and keeps a crashing backend (a segfault
in an FP16 kernel, an out-of-memory) from taking the whole matrix down. Order of work:

1. read the smear (a ``.npy`` the parent wrote) and note the baseline RSS (interpreter, numpy, bcedge);
2. load the artifact with its backend; time ``backend.infer`` on a batch of real tiles cut from the
   smear (warm-up, then iterations per the timing policy; the device sync hook inside the timed span);
3. count the whole smear end to end with ``Counter`` at the cell's tile (scale estimate and resampling
   for a scale-aware model, tiling, preprocessing, inference, decoding, merging), after one warm-up count
   of a single tile (numba compiles there, not in the timing; a scale-aware model's scale guess settles);
4. record peak RSS and device memory, then (optionally) evaluate accuracy on the labelled split through
   the counting runtime, exactly as ``bcedge eval`` does (``evaluate_runtime``).

The tile must be the model's input for a fixed-input model, any multiple of its stride for a
dynamic-input one (``Counter`` refuses anything else, with the reason).
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np

from bcedge.bench.jetson import power_monitor, power_state
from bcedge.bench.memory import DeviceMemorySampler, peak_rss_mb, rss_mb
from bcedge.bench.timing import TimingPolicy, measure

MEMORY_METHOD = ("host: peak RSS (VmHWM) of a fresh process per cell: 'infer' after loading the model and the timed "
                 "inference, 'peak' after the whole-smear count too (tiling, numba NMS, merging); accuracy runs after "
                 "both readings; baseline: RSS before the backend library and model were loaded")


def _torch_sync(backend) -> Callable[[], None] | None:
    if str(getattr(backend, "device", "cpu")).startswith("cuda"):
        return backend.torch.cuda.synchronize
    return None


# backend name -> the sync hook for the timed span (None: ``infer`` returns host arrays, already synchronised)
SYNC_HOOKS: dict[str, Callable] = {"torch": _torch_sync}


def _torch_device_peak(backend) -> tuple[float | None, str | None]:
    if not str(getattr(backend, "device", "cpu")).startswith("cuda"):
        return None, None
    cuda = backend.torch.cuda
    return cuda.max_memory_reserved() / 2**20, "torch caching allocator, max_memory_reserved"


DEVICE_PEAKS: dict[str, Callable] = {"torch": _torch_device_peak}


def tile_batch(smear: np.ndarray, tile: tuple[int, int], batch: int) -> np.ndarray:
    """``batch`` tiles of ``tile`` (width, height) cut from the smear row by row (wrapping around; padded if small)."""
    from bcedge.runtime.tiling import TileGrid

    height, width = smear.shape[:2]
    grid = TileGrid.plan(width, height, tile[0], tile[1], 0)
    tiles = []
    for k in range(batch):
        t = grid[k % len(grid)]
        piece = np.zeros((tile[1], tile[0], 3), np.uint8)
        crop = smear[t.y0:t.y0 + tile[1], t.x0:t.x0 + tile[0]]
        piece[:crop.shape[0], :crop.shape[1]] = crop
        tiles.append(piece)
    return np.stack(tiles)


ACCURACY_METHOD = "bcedge eval: evaluate_runtime, Counter with its defaults (scale estimate, tile, merge, containment)"


def _accuracy(spec: dict) -> dict:
    """Metrics as ``bcedge eval`` reports them: what ``bcedge count`` does to each image (for a fixed-scale
    model on 640x480 BCCD frames at a 640x480 tile this is one exact tile, as before)."""
    from bcedge.data import load_dataset
    from bcedge.evaluate.runtime_eval import evaluate_runtime

    acc = spec["accuracy"]
    started = time.perf_counter()
    data = load_dataset(acc["data"], acc.get("split"))
    metrics, _ = evaluate_runtime(spec["artifact"], data, backend=spec["backend"], device=spec["device"])
    errors = metrics["count_error"]
    return {"status": "ok", "method": ACCURACY_METHOD, "scale": metrics.get("scale"),
            "data": f"{acc['data']} ({acc.get('split')})", "images": metrics.get("images", len(data)),
            "mAP50": round(float(metrics["mAP50"]), 4), "mAP": round(float(metrics["mAP"]), 4),
            "count_mae": {n: round(float(e["count_mae"]), 3) for n, e in errors.items()},
            "count_mre": {n: round(float(e["count_mre"]), 4) for n, e in errors.items() if e.get("count_mre") is not None},
            "seconds": round(time.perf_counter() - started, 1)}


def measure_cell(spec: dict) -> dict:
    """The measurements of one cell (see the module docstring); raises on failure."""
    from bcedge.backends import load_backend, preprocess
    from bcedge.runtime.counter import Counter

    smear = np.load(spec["smear"])
    tile, batch = tuple(spec["tile"]), int(spec["batch"])
    tiles = tile_batch(smear, tile, batch)
    baseline = rss_mb()
    policy = TimingPolicy(**spec["timing"])
    out: dict = {}
    with DeviceMemorySampler() as device_memory:
        backend = load_backend(spec["artifact"], backend=spec["backend"], device=spec["device"])
        try:     # the cell's tile: the input of a fixed-input model, any stride multiple for a dynamic-input one
            counter = Counter(backend, tile=tile, batch_size=batch, overlap=spec.get("smear_overlap"))
        except ValueError as exc:
            raise ValueError(f"{spec['artifact']}: {exc}") from exc
        out["runner"] = backend.describe()
        x = preprocess(tiles)
        sync_for = SYNC_HOOKS.get(spec["backend"])
        if spec.get("power") and (state := power_state()) is not None:
            out["power_state"] = state        # nvpmodel mode and clocks this cell's figures were measured under
        with power_monitor(spec.get("power", False)) as monitor:
            timing = measure(lambda: backend.infer(x), policy, sync=sync_for(backend) if sync_for else None)
        per_batch = timing.summary()
        per_tile = timing.summary(per=batch)
        mean_s = per_batch["mean_ms"] / 1e3
        pixels = tile[0] * tile[1]
        out.update({"latency_per_tile": per_tile, "latency_per_batch": per_batch,
                    "throughput": {"tiles_per_s": round(batch / mean_s, 3),
                                   "megapixels_per_s": round(batch * pixels / mean_s / 1e6, 3)}})
        infer_peak = peak_rss_mb()
        if (power := monitor.summary()) is not None:
            out["power"] = power
        out["smear"] = _count_smear(counter, smear, tile, int(spec.get("e2e_runs", 1)))
        device_peak, device_method = DEVICE_PEAKS.get(spec["backend"], lambda b: (None, None))(backend)
    if device_peak is None and device_memory.peak_mb is not None:
        device_peak, device_method = device_memory.peak_mb, device_memory.method
    out["memory"] = {"host_peak_mb": round(peak_rss_mb(), 1), "host_peak_infer_mb": round(infer_peak, 1),
                     "host_baseline_mb": round(baseline, 1),
                     "host_delta_mb": round(peak_rss_mb() - baseline, 1),
                     "device_peak_mb": None if device_peak is None else round(device_peak, 1),
                     "device_method": device_method or "no GPU memory reading here", "method": MEMORY_METHOD}
    backend.close()
    if spec.get("accuracy"):
        try:
            out["accuracy"] = _accuracy(spec)
        except Exception as exc:  # noqa: BLE001 - the speed is still valid; say why accuracy is missing
            out["accuracy"] = {"status": f"failed: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"[:300]}
    return out


def _count_smear(counter, smear: np.ndarray, tile: tuple[int, int], runs: int) -> dict:
    counter.count(np.ascontiguousarray(smear[:tile[1], :tile[0]]))      # warm-up: numba compiles, buffers fill
    seconds, result = [], None
    for _ in range(max(1, runs)):
        started = time.perf_counter()
        result = counter.count(smear, source="smear")
        seconds.append(time.perf_counter() - started)
    return {"size": [int(smear.shape[1]), int(smear.shape[0])], "tiles": result.tiles, "overlap": counter.overlap,
            "tile": list(result.tile) if result.tile else None, "scale": result.scale.to_dict() if result.scale else None,
            "estimate_s": round(result.timings.get("estimate_s", 0.0), 3),
            "runs_s": [round(s, 3) for s in seconds], "median_s": round(float(np.median(seconds)), 3),
            "cells_counted": result.total}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m bcedge.bench.cell SPEC.json OUT.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    started = time.perf_counter()
    try:
        result = {"status": "ok", **measure_cell(spec)}
    except Exception as exc:  # noqa: BLE001 - reported as the cell's status, with the traceback kept
        from bcedge.backends import BackendUnavailable

        kind = "unsupported here" if isinstance(exc, BackendUnavailable) else "failed"
        message = (str(exc).strip().splitlines() or [""])[0]
        result = {"status": f"{kind}: {type(exc).__name__}: {message}"[:400], "traceback": traceback.format_exc()[-4000:]}
    result["cell_seconds"] = round(time.perf_counter() - started, 1)
    Path(argv[1]).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
