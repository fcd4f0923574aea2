"""The prepared device check (issue 16): one run on a GPU machine measures what the GPU road does.

    PYTHONPATH=. python3 benchmarks/gpu_check.py --checkpoint model.pt --onnx model.onnx --out results/
    PYTHONPATH=. python3 benchmarks/gpu_check.py --dry-run          # CPU + numba's CUDA simulator, tiny sizes

Sections, each with a time budget; one that fails records its error and the rest still run:

1. ``build``: the native NMS library (csrc/, CMakeLists.txt) into a temporary folder, for this GPU's
   architecture (sm_90 on Hopper), loaded through ``BCEDGE_NMS_LIB``.
2. ``nms``: both CUDA NMS kernels (numba ``cuda``, native ``cuda_native``) and torchvision against the
   CPU reference (``numba``) on 1k to 200k candidate boxes: keep sets must be identical; timed.
3. ``merge``: ``merge_tiles`` (core strategy) of about 100k tile detections with each NMS backend,
   and the same merge done on the device with torch ops (core filter + torchvision batched NMS), the
   target being <= 2 ms.
4. ``parity``: the torch backend on the GPU in FP32 and FP16 against ONNX Runtime FP32 on the CPU, on
   the same uint8 sample tiles, decoded alike: counts and boxes matched at IoU 0.9 per class.
5. ``throughput``: bare ``backend.infer`` tiles/s (upload, inference, download), FP32 / FP16, batch 1/8/32.
6. ``end_to_end``: ``Counter.count`` on a 16k x 16k synthetic smear held in memory; Mpx/s and the
   pipeline's efficiency (end-to-end tiles/s over bare tiles/s at the same batch size and precision).
7. ``cuda_graphs``: FP16 with CUDA graphs, batch 1/8/32, against plain FP16 (last: a failed capture
   may leave the CUDA context unusable).

Results: ``<out>/gpu_check_<gpu-name>.json`` and ``.md``, written after every section.
"""
from __future__ import annotations

import os
import sys

if "--dry-run" in sys.argv:  # before anything imports numba: the CUDA simulator replaces the GPU
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bcedge.bench.gpu import Record, candidate_boxes, log, match, python_command, timed
from bcedge.bench.machine import describe_machine, machine_slug

SIZES = {"full": dict(nms=[1_000, 10_000, 50_000, 200_000], merge_cells=90_000, tiles=9, batches=[1, 8, 32],
                      smear=(16384, 16384), block=2048, e2e_batch=32, timing={},
                      parity=("fp32", "fp16"), speed=("fp16", "fp32")),
         "dry": dict(nms=[250, 500], merge_cells=250, tiles=2, batches=[1, 2], smear=(1024, 1024), block=512,
                     e2e_batch=2, timing=dict(warmup=1, min_runs=1, min_total_s=0.0),
                     parity=("fp32", "fp16"), speed=("fp32",)),  # half convolutions crawl on a CPU
         "quick": dict(nms=[300], merge_cells=400, tiles=1, batches=[1], smear=(640, 480), block=320, e2e_batch=1,
                       timing=dict(warmup=1, min_runs=1, min_total_s=0.0), parity=("fp32",), speed=("fp32",))}
BUDGETS = {"nms": 35, "merge": 12, "parity": 20, "throughput": 28, "end_to_end": 70, "cuda_graphs": 15}
IOU_MATCH = 0.9


def run_cmd(cmd: list[str], timeout: float) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {(out.stdout + out.stderr)[-2000:]}")
    return out.stdout


def machine_info() -> dict:
    desc = describe_machine()
    info = {"cpu": desc["cpu"], "logical_cpus": desc["logical_cpus"], "memory_gb": desc["memory_gb"],
            "python": desc["python"], "platform": desc["platform"], "libraries": desc["libraries"],
            "gpu": dict(desc["gpus"][0]) if desc["gpus"] else {}, "slug": machine_slug(desc)}
    for name in ("cupy", "numba_cuda"):
        try:
            from importlib import metadata
            info["libraries"][name] = metadata.version(name.replace("_", "-") if name != "cupy" else "cupy-cuda13x")
        except Exception:  # noqa: BLE001 - not installed: not listed
            pass
    try:
        import torch
        info["torch_cuda"] = torch.version.cuda
        info["torch_sees_gpu"] = bool(torch.cuda.is_available())
        if torch.cuda.is_available():
            info["gpu"]["torch_name"] = torch.cuda.get_device_name(0)
            info["gpu"]["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
        info["cudnn"] = torch.backends.cudnn.version()
    except Exception as exc:  # noqa: BLE001
        info["torch_error"] = str(exc)
    return info


def commit() -> str:
    try:
        return run_cmd(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], 10).strip()
    except Exception:  # noqa: BLE001 - a copy without .git
        return "unknown"


# --- sections ----------------------------------------------------------------------------------------

def build_native(entry: dict, machine: dict, dry: bool, deadline: float) -> None:
    cap = machine["gpu"].get("capability") or machine["gpu"].get("compute_capability") or ""
    arch = cap.replace(".", "") if cap and not dry else "90"
    build = Path(tempfile.mkdtemp(prefix="bcedge_nms_build_"))
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    nvcc = shutil.which("nvcc") or next((str(p) for p in sorted(Path("/usr/local").glob("cuda*/bin/nvcc"))), None)
    compiler = [f"-DCMAKE_CUDA_COMPILER={nvcc}"] if nvcc else []
    entry["nvcc"] = nvcc
    started = time.perf_counter()
    run_cmd(["cmake", "-S", str(ROOT), "-B", str(build), *generator, *compiler, f"-DCMAKE_CUDA_ARCHITECTURES={arch}"],
            max(deadline - time.time(), 30))
    log(run_cmd(["cmake", "--build", str(build), "-j", "8"], 240).strip().splitlines()[-1])
    lib = build / "libbcedge_nms.so"
    entry.update(arch=f"sm_{arch}", build_s=round(time.perf_counter() - started, 1), library=str(lib))
    os.environ["BCEDGE_NMS_LIB"] = str(lib)
    from bcedge.runtime.nms import native

    native.load.cache_clear()
    native.gpu_available.cache_clear()
    loaded = native.load()
    entry.update(has_cuda=bool(loaded.bcedge_nms_has_cuda()), devices=int(loaded.bcedge_nms_device_count()))


def gpu_nms_backends(dry: bool) -> list[str]:
    """The kernels to check: both CUDA kernels, the torch grid NMS (the device merge's) and torchvision; the
    dry run's native stand-in is the CPU build."""
    from bcedge.runtime.nms import is_available

    names = ["cuda", "cuda_native" if is_available("cuda_native") or not dry else "native_cpu", "torch_grid", "torchvision"]
    return names


def check_nms(entry: dict, sizes: list[int], dry: bool, deadline: float, timing: dict) -> None:
    import torch  # noqa: F401 - makes the torchvision NMS backend available

    from bcedge.runtime.nms import nms

    entry["timed"] = "whole nms() calls: host arrays in, kept indices out (plan, copies, kernel, sweep)"
    rows = []
    entry["rows"] = rows
    for n in sizes:
        xyxy, scores, classes = candidate_boxes(n, seed=n)
        reference = nms(xyxy, scores, classes, 0.5, backend="numba")
        ref_time = timed(lambda: nms(xyxy, scores, classes, 0.5, backend="numba"), deadline, max_runs=5)
        rows.append({"boxes": n, "backend": "numba (CPU reference)", "kept": len(reference), **ref_time})
        for name in gpu_nms_backends(dry):
            if time.time() > deadline:
                rows.append({"boxes": n, "backend": name, "skipped": "section budget spent"})
                continue
            try:
                keep = nms(xyxy, scores, classes, 0.5, backend=name)
                same = bool(np.array_equal(keep, reference))
                row = {"boxes": n, "backend": name, "kept": len(keep), "identical_keep": same,
                       **timed(lambda: nms(xyxy, scores, classes, 0.5, backend=name), deadline,
                               **{"max_runs": 10, **timing})}
                if not same:
                    row["differences"] = len(np.setxor1d(keep, reference))
            except Exception as exc:  # noqa: BLE001 - one kernel failing must not hide the others
                row = {"boxes": n, "backend": name, "error": f"{type(exc).__name__}: {exc}"[:300]}
            rows.append(row)
            log(f"   nms {n:>7} boxes {name:12s} {row.get('median_ms', '-')} ms identical={row.get('identical_keep')}")
    checked = [r for r in rows if "identical_keep" in r]
    entry["all_identical"] = bool(checked) and all(r["identical_keep"] for r in checked)


def torchvision_core_merge(torch, boxes, scores, classes, tile_ids, tiles, iou: float, tol: float):
    """For comparison: the core rule on the device, then torchvision's batched NMS (O(n^2) mask, host sweep)."""
    from torchvision.ops import batched_nms

    from bcedge.runtime.device_merge import clip_to_image, in_own_core
    from bcedge.runtime.merge import core_bounds

    lo, hi, limits = core_bounds(tiles)
    boxes = clip_to_image(torch, boxes, limits)
    lo, hi = (torch.from_numpy(a).to(boxes.device) for a in (lo, hi))
    idx = torch.nonzero(in_own_core(torch, boxes, tile_ids, lo, hi, tol)).squeeze(1)
    return idx[batched_nms(boxes[idx], scores[idx], classes[idx], iou)]


def check_merge(entry: dict, cells: int, dry: bool, deadline: float, timing: dict) -> None:
    import torch
    from merge_speed import make_smear, simulate_tiles

    from bcedge.detections import Detections
    from bcedge.runtime.merge import MergeParams, merge_tiles

    smear, width, height = make_smear(cells, seed=1)
    per_tile, grid = simulate_tiles(smear, width, height, seed=1)
    raw = Detections.concat(d.shift(t.x0, t.y0) for t, d in per_tile)
    entry.update(cells=cells, raw_boxes=len(raw), tiles=len(grid), image=f"{width}x{height}")
    reference = merge_tiles(per_tile, MergeParams("core", nms_backend="numba"))
    entry["reference_count"] = len(reference)
    rows = []
    entry["host_merge"] = rows
    for name in ["numba", *gpu_nms_backends(dry)]:
        if time.time() > deadline:
            rows.append({"nms_backend": name, "skipped": "section budget spent"})
            continue
        try:
            merged = merge_tiles(per_tile, MergeParams("core", nms_backend=name))
            rows.append({"nms_backend": name, "count": len(merged), "same_count": len(merged) == len(reference),
                         **timed(lambda: merge_tiles(per_tile, MergeParams("core", nms_backend=name)), deadline,
                                 **{"max_runs": 5, **timing})})
        except Exception as exc:  # noqa: BLE001
            rows.append({"nms_backend": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
        log(f"   host merge with {name}: {rows[-1].get('median_ms')} ms, count {rows[-1].get('count')}")
    from bcedge.runtime.device_merge import merge_on_device

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tile_ids = np.repeat(np.arange(len(per_tile)), [len(d) for _, d in per_tile])
    as_t = lambda a, dt=None: torch.as_tensor(np.ascontiguousarray(a), device=device, dtype=dt)
    tensors = (as_t(raw.xyxy), as_t(raw.scores, torch.float32), as_t(raw.class_ids, torch.int64), as_t(tile_ids))
    sync = torch.cuda.synchronize if device == "cuda" else None
    entry["runtime_device_merge_modules"] = runtime_device_modules()
    params = MergeParams("core")
    variants = {"device_merge_torch": ("bcedge.runtime.device_merge (grid NMS in torch ops)",
                                       lambda: merge_on_device(*tensors, grid, params)),
                "device_merge_torchvision": ("core rule in torch ops + torchvision batched_nms",
                                             lambda: torchvision_core_merge(torch, *tensors, grid, params.iou, params.tolerance))}
    for key, (method, run) in variants.items():
        kept = run()
        same = _same_boxes(raw, kept.cpu().numpy(), reference, grid)
        entry[key] = {"device": device, "method": method, "count": len(kept), "same_count": len(kept) == len(reference),
                      "same_boxes": bool(same), **timed(run, deadline, max_runs=50, sync=sync)}
        log(f"   {method} on {device}: {entry[key]['median_ms']} ms, count {entry[key]['count']}")


def _same_boxes(raw, kept: np.ndarray, reference, grid) -> bool:
    """Whether the device merge kept exactly the host merge's boxes (clipped to the image, as it does)."""
    from bcedge.runtime.merge import core_bounds

    def rows(xyxy, classes):
        table = np.concatenate([xyxy, classes[:, None].astype(np.float32)], 1)
        return table[np.lexsort(table.T[::-1])]

    clipped = np.clip(raw.xyxy[kept], 0, core_bounds(grid)[2])
    return np.array_equal(rows(clipped, raw.class_ids[kept]), rows(reference.xyxy, reference.class_ids))


def runtime_device_modules() -> list[str]:
    """Modules of ``bcedge.runtime`` named for a device path (the check does not know their API yet)."""
    import pkgutil

    import bcedge.runtime

    return [m.name for m in pkgutil.walk_packages(bcedge.runtime.__path__, "bcedge.runtime.")
            if any(word in m.name for word in ("device", "gpu", "cupy"))]


def sample_tiles(size: tuple[int, int], pad: int, count: int) -> np.ndarray:
    """The shipped BCCD sample smears cut/padded to the model input, plus flips: uint8 (N, H, W, 3)."""
    from bcedge.imageio import read_image

    width, height = size
    tiles = []
    for path in sorted((ROOT / "bcedge" / "assets" / "sample_bccd" / "JPEGImages").glob("*.jpg")):
        image = read_image(path)
        for view in (image, image[:, ::-1], image[::-1]):
            tile = np.full((height, width, 3), pad, np.uint8)
            crop = view[:height, :width]
            tile[:crop.shape[0], :crop.shape[1]] = crop
            tiles.append(tile)
    return np.stack(tiles)[np.arange(count) % len(tiles)]


def check_parity(entry: dict, state: dict, args, size: dict, device: str) -> None:
    from bcedge.backends import load_backend, preprocess
    from bcedge.runtime.decode import decode_batch

    ort = load_backend(args.onnx, backend="onnxruntime", device="cpu")
    meta = ort.meta
    tiles = sample_tiles(meta.input_size, meta.pad_value, size["tiles"])
    batch = preprocess(tiles)
    reference = decode_batch(*ort.infer(batch), meta, nms_backend="numba")
    entry.update(tiles=len(tiles), input_size=list(meta.input_size), reference="onnxruntime CPU fp32",
                 reference_counts=[len(d) for d in reference])
    state["tiles"] = tiles
    rows = []
    entry["rows"] = rows
    for precision in size["parity"]:
        backend = load_backend(args.checkpoint, backend="torch", device=device, precision=precision)
        state[precision] = backend
        if tuple(backend.meta.input_size) != tuple(meta.input_size) and not meta.dynamic_input:
            raise ValueError(f"checkpoint input {backend.meta.input_size} differs from the ONNX input {meta.input_size}")
        dets = decode_batch(*backend.infer(batch), meta, nms_backend="numba")
        per_tile = [match(r, d, IOU_MATCH) for r, d in zip(reference, dets)]
        rows.append({"backend": backend.describe(), "counts": [len(d) for d in dets],
                     "same_counts": all(len(r) == len(d) for r, d in zip(reference, dets)),
                     "all_matched_iou_0.9": all(m["all_matched"] for m in per_tile),
                     "matched": sum(m["matched"] for m in per_tile), "reference_total": sum(len(r) for r in reference),
                     "worst_matched_iou": min(m["worst_matched_iou"] for m in per_tile)})
        log(f"   {rows[-1]}")


def check_throughput(entry: dict, state: dict, size: dict, deadline: float, variants: list[str]) -> None:
    """Bare ``backend.infer`` on preprocessed batches (upload, inference, download), per variant and batch."""
    from bcedge.backends import preprocess

    tiles = state["tiles"]
    rows = []
    entry["rows"] = rows
    bare = state.setdefault("bare", {})
    for batch_size in size["batches"]:
        batch = preprocess(tiles[np.arange(batch_size) % len(tiles)])
        for name in variants:
            if time.time() > deadline:
                rows.append({"variant": name, "batch": batch_size, "skipped": "section budget spent"})
                continue
            try:
                timing = {"min_runs": 3, "max_runs": 30, "min_total_s": 1.0, "warmup": 2, **size["timing"]}
                t = timed(lambda: state[name].infer(batch), deadline, **timing)
                row = {"variant": name, "backend": state[name].describe(), "batch": batch_size, **t,
                       "tiles_per_s": round(batch_size / (t["median_ms"] / 1e3), 1)}
                bare[(name, batch_size)] = row["tiles_per_s"]
            except Exception as exc:  # noqa: BLE001 - e.g. a graph capture that fails: record it
                row = {"variant": name, "batch": batch_size, "error": f"{type(exc).__name__}: {exc}"[:300]}
            rows.append(row)
            log(f"   {name:12s} batch {batch_size:3d}: {row.get('tiles_per_s')} tiles/s")


def check_cuda_graphs(entry: dict, state: dict, args, size: dict, deadline: float) -> None:
    """FP16 with CUDA graphs, last: a capture that fails can leave the CUDA context unusable."""
    from bcedge.backends import load_backend

    if not state["fp16"].device.startswith("cuda"):
        entry["skipped"] = "CUDA graphs need a CUDA device"
        return
    state["fp16+graphs"] = load_backend(args.checkpoint, backend="torch", device=state["fp16"].device,
                                        precision="fp16", cuda_graphs=True)
    check_throughput(entry, state, size, deadline, ["fp16+graphs"])
    for row in entry["rows"]:
        plain = state["bare"].get(("fp16", row["batch"]))
        if plain and row.get("tiles_per_s"):
            row["speedup_vs_fp16"] = round(row["tiles_per_s"] / plain, 3)


def synthetic_frame(width: int, height: int, block: int) -> tuple[np.ndarray, str]:
    """A ``width`` x ``height`` smear in memory: one synthetic ``block`` x ``block`` smear repeated (fast)."""
    from bcedge.data.synth import generate_smear

    pixels = generate_smear(block, block, seed=3).pixels
    reps = (-(-height // block), -(-width // block), 1)
    return np.ascontiguousarray(np.tile(pixels, reps)[:height, :width]), f"{block}x{block} synthetic smear tiled"


def profile_stages(counter) -> dict[str, float]:
    """Seconds each pipeline stage of ``counter`` spends working (tile cutting, prepare, infer, decode),
    filled in as it counts: the stage nearest the wall time is what holds the pipeline below bare inference."""
    busy: dict[str, float] = {}

    def timed_stage(name, stage):
        def run(item):
            started = time.perf_counter()
            for out in stage(item):
                busy[name] = busy.get(name, 0.0) + time.perf_counter() - started
                yield out
                started = time.perf_counter()
            busy[name] = busy.get(name, 0.0) + time.perf_counter() - started
        return run

    def timed_batches(src, grid, batches=counter._batches):
        items = batches(src, grid)
        while True:
            started = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                busy["cut tiles"] = busy.get("cut tiles", 0.0) + time.perf_counter() - started
            yield item

    for name in ("_prepare", "_infer", "_decode", "_infer_on_device"):
        setattr(counter, name, timed_stage(name.strip("_"), getattr(counter, name)))
    counter._batches = timed_batches
    return busy


def check_end_to_end(entry: dict, state: dict, size: dict, deadline: float) -> None:
    from bcedge.runtime.counter import Counter

    started = time.perf_counter()
    frame, how = synthetic_frame(*size["smear"], size["block"])
    entry.update(image=f"{frame.shape[1]}x{frame.shape[0]}", made_from=how,
                 generate_s=round(time.perf_counter() - started, 2))
    rows = []
    entry["rows"] = rows
    batch = size["e2e_batch"]
    last_s = 5.0
    variants = [(n, on_device) for n in size["speed"] if n in state for on_device in (True, False)]
    for name, on_device in variants:
        if time.time() + last_s > deadline:  # a second 16k x 16k run would overrun the budget
            rows.append({"precision": name, "decode_on_device": on_device, "skipped": "section budget spent"})
            continue
        # Same tiles as the bare measurement: the model's input size, at its own scale (no resampling).
        meta = state[name].meta
        counter = Counter(state[name], batch_size=batch, tile=tuple(meta.input_size),
                          cell_size=(meta.pixel_scale or {}).get("cell_px") or "auto", device_decode=on_device)
        counter.warmup()
        counter.count(frame[:2048, :2048])   # first-call costs (kernels, allocator) stay out of the timing
        busy = profile_stages(counter)
        started = time.perf_counter()
        result = counter.count(frame)
        seconds = time.perf_counter() - started
        last_s = seconds + 2.0
        tiles_per_s = result.tiles / seconds
        bare = state.get("bare", {}).get((name, batch))
        rows.append({"precision": name, "decode_on_device": counter._device_decode,
                     "merge_on_device": counter._device_decode,   # with device decoding, the core merge runs there too
                     "backend": state[name].describe(),
                     "batch": batch, "tiles": result.tiles,
                     "seconds": round(seconds, 3), "tiles_per_s": round(tiles_per_s, 1),
                     "mpx_per_s": round(frame.shape[0] * frame.shape[1] / 1e6 / seconds, 1),
                     "bare_tiles_per_s": bare, "efficiency": round(tiles_per_s / bare, 4) if bare else None,
                     "cells": result.total, "merge_s": round(result.timings.get("merge_s", 0.0), 3),
                     "stage_busy_s": {k: round(v, 3) for k, v in busy.items()}})
        log(f"   {rows[-1]}")


def targets(data: dict) -> dict:
    """Pass/fail against the issue's targets, from what the sections measured (None: not measured)."""
    s = data["sections"]
    merge = s.get("merge", {}).get("device_merge_torch", {})
    e2e = [r for r in s.get("end_to_end", {}).get("rows", []) if r.get("efficiency")]
    fp16 = [r for r in s.get("parity", {}).get("rows", []) if "fp16" in r.get("backend", "")]
    best = max(e2e, key=lambda r: r["efficiency"]) if e2e else None
    sizes = [r["boxes"] for r in s.get("nms", {}).get("rows", [])]
    found = {
        "merge of 100k boxes on the device <= 2 ms": {
            "measured": merge.get("median_ms"),
            "where": f"{merge.get('device')}, {s.get('merge', {}).get('raw_boxes')} boxes, {merge.get('method')}" if merge else None,
            "pass": (merge["median_ms"] <= 2.0 and merge["device"] == "cuda" and merge["same_boxes"]) if merge else None},
        "GPU pipeline >= 90% of bare inference": {
            "measured": best["efficiency"] if best else None, "where": best["backend"] if best else None,
            "pass": best["efficiency"] >= 0.9 if best else None},
        "torch CUDA FP16 same counts as ORT FP32 CPU, boxes matched at IoU 0.9": {
            "measured": {k: fp16[0][k] for k in ("same_counts", "all_matched_iou_0.9", "worst_matched_iou")} if fp16 else None,
            "where": fp16[0]["backend"] if fp16 else None,
            "pass": (fp16[0]["same_counts"] and fp16[0]["all_matched_iou_0.9"]) if fp16 else None},
        "NMS kernels identical to the CPU reference": {
            "measured": s.get("nms", {}).get("all_identical"),
            "where": f"{min(sizes)}..{max(sizes)} boxes" if sizes else None, "pass": s.get("nms", {}).get("all_identical")},
    }
    if data["mode"] != "full":  # the dry run checks the code paths; its numbers say nothing about a GPU
        for entry in found.values():
            entry["pass"] = None
            entry["note"] = "dry run: not a GPU measurement"
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "export/checkpoints/fcos_lite_efficientnet_lite0_default/checkpoint.pt")
    parser.add_argument("--onnx", type=Path, default=ROOT / "bcedge/assets/models/default.onnx")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results; dry run: a temp folder)")
    parser.add_argument("--dry-run", action="store_true", help="CPU and numba's CUDA simulator, tiny sizes")
    parser.add_argument("--quick", action="store_true", help="with --dry-run: the smallest sizes (CI)")
    parser.add_argument("--max-seconds", type=float, default=150.0, help="overall budget after the build")
    parser.add_argument("--skip", nargs="*", default=[], choices=["nms", "merge", "model"])
    args = parser.parse_args(argv)
    mode = ("quick" if args.quick else "dry") if args.dry_run else "full"
    size = SIZES[mode]
    out = args.out or (Path(tempfile.gettempdir()) / "bcedge_gpu_check" if args.dry_run else ROOT / "benchmarks/results")
    log(f"gpu_check mode {mode}, results to {out}")

    machine = machine_info()
    stem = "gpu_check_" + ("dry-run" if args.dry_run else machine["slug"])
    record = Record(out, stem, args.max_seconds, {"mode": mode, "commit": commit(), "command": python_command(),
                                                   "machine": machine, "sizes": size})
    log(f"machine: {machine['gpu'] or 'no GPU'}; torch sees GPU: {machine.get('torch_sees_gpu')}")
    if not args.dry_run and not machine.get("torch_sees_gpu"):
        log("WARNING: no GPU visible to torch; the model sections will fail with BackendUnavailable")
    device = "cpu" if args.dry_run else "cuda"

    build_started = time.time()
    with record.section("build", 240) as (entry, deadline):
        build_native(entry, machine, args.dry_run, deadline)
    record.deadline += time.time() - build_started  # the budget excludes the build
    if "nms" not in args.skip:
        with record.section("nms", BUDGETS["nms"]) as (entry, _):
            check_nms(entry, size["nms"], args.dry_run, time.time() + min(BUDGETS["nms"], record.remaining()),
                      size["timing"])
    if "merge" not in args.skip:
        with record.section("merge", BUDGETS["merge"]) as (entry, _):
            check_merge(entry, size["merge_cells"], args.dry_run,
                        time.time() + min(BUDGETS["merge"], record.remaining()), size["timing"])
    state: dict = {}
    model_missing = [str(p) for p in (args.checkpoint, args.onnx) if not p.is_file()]
    for name in ("parity", "throughput", "end_to_end", "cuda_graphs"):
        with record.section(name, BUDGETS[name]) as (entry, _):
            until = time.time() + min(BUDGETS[name], max(record.remaining(), 0))
            if "model" in args.skip or model_missing:
                entry["skipped"] = "model missing: " + ", ".join(model_missing) if model_missing else "--skip model"
            elif name == "parity":
                check_parity(entry, state, args, size, device)
            elif "fp32" not in state:
                entry["skipped"] = "the parity section did not load the model"
            elif name == "throughput":
                check_throughput(entry, state, size, until, [n for n in size["speed"] if n in state])
            elif name == "end_to_end":
                check_end_to_end(entry, state, size, until)
            elif "fp16" in state:
                check_cuda_graphs(entry, state, args, size, until)
            else:
                entry["skipped"] = "no fp16 model in this mode"
    record.data["targets"] = targets(record.data)
    json_path, md_path = record.write()
    log(f"wrote {json_path} and {md_path} ({record.data['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
