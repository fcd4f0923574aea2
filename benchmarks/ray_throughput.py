"""Throughput of ``bcedge count --engine ray`` with 1 and 2 workers against the plain local run, on this
machine, and from the measured per-tile cost and transfer sizes an estimate for N GPU machines.

Runs, on the same synthetic smears (PNG, red cells ~100 px) and the bundled default model:
- ``local``: one warm ``Counter`` here (ONNX Runtime's default threads), ``count_file`` per image;
- ``ray, 1 worker`` / ``ray, 2 workers``: ``RayEngine`` on a local Ray cluster of this machine's CPUs,
  each worker one ``Counter`` with one thread; start-up (workers loading the model) timed apart;
- each at a fixed scale (``cell_size=100``: images independent, the archive case) and with the automatic
  scale (each image's first guess follows the images before it: the engine recounts an image whose
  speculative guess was wrong, to stay identical to the local run; the recounts are reported);
- one stripped BigTIFF counted in bands (``band_pixels`` lowered so it is split; 512 px tiles) against the local run.
Every cluster result is checked against the local one (same boxes, scores, classes, scale).

    nice -n 10 python benchmarks/ray_throughput.py                 # about a minute on 2 cores
    python benchmarks/ray_throughput.py --images 4 --size 1200x900 --results /tmp/r   # a quick look

Results: ``benchmarks/results/ray_throughput_<machine>.{json,md}`` and ``ray_scaling_estimate.md``.
"""
from __future__ import annotations

import argparse
import json
import pickle
import statistics
import time
from pathlib import Path

import numpy as np
from _common import CACHE, RESULTS, header, log, parse_size, write_results
from _smears import smear

from bcedge.bench.machine import describe_machine, machine_slug
from bcedge.testing.faults import JobLog

GPU_CHECK = RESULTS / "gpu_check_nvidia-h200.json"   # a measured GPU machine: the whole pipeline's tiles/s there
BAND_OPTIONS = {"tile": (512, 512)}                # the model's own input size: a small slide still has many tiles
ARCHIVE = (10_000, 4096, 3072)
SLIDE = (100_000, 100_000)


def same(a, b) -> bool:
    if isinstance(a, Exception) or isinstance(b, Exception):
        return type(a) is type(b) and str(a) == str(b)
    return (np.array_equal(a.detections.xyxy, b.detections.xyxy) and np.array_equal(a.detections.scores, b.detections.scores)
            and np.array_equal(a.detections.class_ids, b.detections.class_ids) and a.scale == b.scale)


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def model_mpx(results) -> float:
    """Model pixels counted (image pixels x scale squared), in millions."""
    return sum(r.image_size[0] * r.image_size[1] * r.scale.factor ** 2 for r in results) / 1e6


def run_local(paths: list[Path], options: dict) -> dict:
    from bcedge.runtime.counter import Counter

    counter = Counter.load("default", **options)
    counter.warmup()
    results, seconds = timed(lambda: [counter.count_file(p) for p in paths])
    return {"results": results, "seconds": seconds, "tiles": sum(r.tiles for r in results)}


def run_ray(paths: list[Path], workers: int, options: dict, log_path: Path, **engine) -> dict:
    from bcedge.cluster.engine import RayEngine

    log_path.unlink(missing_ok=True)
    jobs = JobLog(str(log_path))
    eng, start_s = timed(lambda: RayEngine("default", None, workers, before_job=jobs, **engine, **options).__enter__())
    try:
        outcomes, seconds = timed(lambda: [o for _, o in eng.count(paths)])
    finally:
        eng.__exit__(None, None, None)
    sent = jobs.read()
    return {"results": outcomes, "seconds": seconds, "start_s": start_s, "jobs": len(sent),
            "image_jobs": sum(j["kind"] == "ImageJob" for j in sent), "band_jobs": sum(j["kind"] == "BandJob" for j in sent)}


def transfer_sizes(paths: list[Path], results: list, band_outcomes: list) -> dict:
    from bcedge.cluster.jobs import ImageJob, ImageOutcome

    job = len(pickle.dumps(ImageJob(0, str(paths[0]), (0.56,) * 5)))
    outcome = [len(pickle.dumps(ImageOutcome(0, (), r, None, ()))) for r in results]
    cells = [len(r.detections) for r in results]
    band = [len(pickle.dumps(o)) for o in band_outcomes]
    band_tiles = [len(o.per_tile) for o in band_outcomes]
    return {"image_job_bytes": job, "image_result_bytes_mean": statistics.mean(outcome),
            "result_bytes_per_cell": sum(outcome) / max(1, sum(cells)), "image_file_bytes_mean": statistics.mean(
                p.stat().st_size for p in paths),
            "band_result_bytes_mean": statistics.mean(band) if band else None,
            "band_result_bytes_per_tile": sum(band) / max(1, sum(band_tiles)) if band else None}


def band_outcomes(path: Path, options: dict, factor: float) -> list:
    """The outcomes workers send back for a banded pass, made in-process to weigh them."""
    from bcedge.cluster.bands import band_target, band_view, split_bands
    from bcedge.cluster.jobs import BandJob
    from bcedge.cluster.worker import CounterSpec, CountWorker
    from bcedge.runtime.sources import open_image

    worker = CountWorker(CounterSpec("default", options=options))
    with open_image(path) as src:
        view = band_view(src, None, factor)
        grid = worker.counter.plan(view.width, view.height)
    ranges = split_bands(len(grid), grid.n_cols, worker.counter.batch_for(grid), band_target(len(grid), 2))
    shape = (grid.tile_w, grid.tile_h, len(grid))
    return [worker.count_band(BandJob(str(path), None, factor, r, shape)) for r in ranges[:3]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=parse_size, default=(1600, 1200))
    parser.add_argument("--slide", type=parse_size, default=(3000, 2400), help="the BigTIFF counted in bands")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report-only", type=Path, default=None, metavar="JSON",
                        help="only write the markdown and the estimate again from a result file")
    args = parser.parse_args()
    if args.report_only:
        report = json.loads(args.report_only.read_text())
        write_results(args.report_only.stem, report, markdown(report), args.results)
        (args.results / "ray_scaling_estimate.md").write_text(estimate(report))
        return
    import ray
    import tifffile

    paths = [smear(*args.size, seed=100 + k) for k in range(args.images)]
    slide = CACHE / f"slide_{args.slide[0]}x{args.slide[1]}_strips.tif"
    if not slide.exists():
        from bcedge.data.synth import generate_smear

        tifffile.imwrite(slide, generate_smear(*args.slide, seed=7).pixels, bigtiff=True, rowsperstrip=64,
                         photometric="rgb")
    desc = describe_machine("shared 2-core machine: another agent's jobs ran alongside; run with nice -n 10",
                            threads="local: default; each Ray worker: 1")
    modes = {"fixed scale (cell_size=100)": {"cell_size": 100}, "auto scale": {}}
    _, ray_start_s = timed(lambda: ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 2**20,
                                            _node_ip_address="127.0.0.1", log_to_driver=False))
    rows, local_runs = [], {}
    try:
        for mode, options in modes.items():
            log(f"{mode}: local")
            local = local_runs[mode] = run_local(paths, options)
            mpx = model_mpx(local["results"])
            rows.append({"mode": mode, "engine": "local", "workers": None, "seconds": local["seconds"],
                         "images_per_s": len(paths) / local["seconds"], "model_mpx_per_s": mpx / local["seconds"],
                         "tiles": local["tiles"], "identical": True})
            for workers in (1, 2):
                log(f"{mode}: ray, {workers} worker(s)")
                run = run_ray(paths, workers, options, CACHE / "ray_jobs.jsonl")
                rows.append({"mode": mode, "engine": "ray", "workers": workers, "seconds": run["seconds"],
                             "start_s": run["start_s"], "images_per_s": len(paths) / run["seconds"],
                             "model_mpx_per_s": mpx / run["seconds"], "image_jobs": run["image_jobs"],
                             "recounted": run["image_jobs"] - len(paths),
                             "identical": all(map(same, run["results"], local["results"]))})
        log("banded BigTIFF: local, then ray with 2 workers")
        banded_local = run_local([slide], BAND_OPTIONS)
        banded = run_ray([slide], 2, BAND_OPTIONS, CACHE / "ray_jobs.jsonl", band_pixels=10**6)
        slide_row = {"image": f"{args.slide[0]}x{args.slide[1]} BigTIFF, strips of 64 rows",
                     "local_s": banded_local["seconds"], "ray_2_workers_s": banded["seconds"],
                     "band_jobs": banded["band_jobs"], "tiles": banded_local["tiles"],
                     "identical": same(banded["results"][0], banded_local["results"][0])}
    finally:
        ray.shutdown()
    fixed = local_runs["fixed scale (cell_size=100)"]
    per_tile_s = fixed["seconds"] / fixed["tiles"]
    per_model_mpx_s = fixed["seconds"] / model_mpx(fixed["results"])
    sizes = transfer_sizes(paths, fixed["results"], band_outcomes(slide, BAND_OPTIONS, banded_local["results"][0].scale.factor))
    report = {"machine": desc, "images": {"count": len(paths), "size": list(args.size)}, "ray_init_s": ray_start_s,
              "rows": rows, "banded": slide_row, "per_tile_s": per_tile_s, "local_s_per_model_mpx": per_model_mpx_s,
              "tile": fixed["results"][0].tile, "scale": fixed["results"][0].scale.factor, "transfer": sizes}
    stem = f"ray_throughput_{machine_slug(desc, with_isa=True)}"
    write_results(stem, report, markdown(report), args.results)
    (args.results / "ray_scaling_estimate.md").write_text(estimate(report))
    log(f"wrote {args.results / 'ray_scaling_estimate.md'}")


def markdown(report: dict) -> str:
    images = report["images"]
    lines = header("Counting on a Ray cluster: 1 and 2 workers against the local run", report["machine"],
                   f"{images['count']} synthetic smears of {images['size'][0]}x{images['size'][1]} (PNG, red cells "
                   f"~100 px), bundled default model, ONNX Runtime FP32 on the CPU. Local: one warm Counter. Ray: a "
                   f"local cluster of 2 CPUs (started in {report['ray_init_s']:.1f} s), workers of 1 CPU each; "
                   "'start' is the workers loading the model, not counted in the throughput. 'identical': every "
                   "image's boxes, scores, classes and scale equal the local run's. Model Mpx: image pixels at the "
                   "model's scale.")
    lines += ["| scale | engine | workers | s | images/s | model Mpx/s | start s | image jobs (recounted) | identical |",
              "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in report["rows"]:
        jobs = f"{r['image_jobs']} ({r['recounted']})" if r["engine"] == "ray" else ""
        start = f"{r['start_s']:.1f}" if r["engine"] == "ray" else ""
        lines.append(f"| {r['mode']} | {r['engine']} | {r['workers'] or ''} | {r['seconds']:.2f} | "
                     f"{r['images_per_s']:.2f} | {r['model_mpx_per_s']:.2f} | {start} | {jobs} | {r['identical']} |")
    b, t = report["banded"], report["transfer"]
    lines += ["", f"Banded: {b['image']}, {b['tiles']} tiles of 512x512 (auto scale): local {b['local_s']:.2f} s, Ray with 2 "
              f"workers {b['ray_2_workers_s']:.2f} s in {b['band_jobs']} band jobs (all passes); identical: "
              f"{b['identical']}.", "",
              f"Measured cost here: {report['per_tile_s'] * 1000:.0f} ms per tile of {report['tile'][0]}x"
              f"{report['tile'][1]} (scale {report['scale']:.3f}), {report['local_s_per_model_mpx']:.3f} s per model "
              f"Mpx. Transfers: an image job {t['image_job_bytes']} B, its result {t['image_result_bytes_mean'] / 1024:.1f}"
              f" KB ({t['result_bytes_per_cell']:.0f} B per cell); a band's result {t['band_result_bytes_per_tile']:.0f} "
              f"B per tile; the image file read by the worker {t['image_file_bytes_mean'] / 2**20:.1f} MB.", ""]
    return "\n".join(lines)


def estimate(report: dict) -> str:
    """N GPU machines: the work per item from what was measured here, the GPU's rate from a measured H200."""
    t = report["transfer"]
    gpu = json.loads(GPU_CHECK.read_text()) if GPU_CHECK.exists() else None
    e2e = max(gpu["sections"]["end_to_end"]["rows"], key=lambda r: r["mpx_per_s"]) if gpu else None
    gpu_mpx_s = e2e["mpx_per_s"] if e2e else 68.5
    scale = report["scale"]
    n, w, h = ARCHIVE
    image_model_mpx = w * h * scale ** 2 / 1e6 + 0.26   # the full pass plus the auto scale's probe window
    file_mb = report["transfer"]["image_file_bytes_mean"] / (report["images"]["size"][0] * report["images"]["size"][1]) * w * h / 2**20
    per_image_gpu_s = image_model_mpx / gpu_mpx_s
    ray_overhead_s = _ray_overhead(report)
    cells_per_mpx = 1 / t["result_bytes_per_cell"] * t["image_result_bytes_mean"] / (
        report["images"]["size"][0] * report["images"]["size"][1] / 1e6)
    slide_mpx = SLIDE[0] * SLIDE[1] / 1e6
    slide_model_mpx = slide_mpx * scale ** 2
    slide_cells = cells_per_mpx * slide_mpx
    lines = ["# Scaling estimate: bcedge on N GPU machines with Ray", "",
             f"Written by `benchmarks/ray_throughput.py` from `{Path(_stem(report)).name}.json` (this machine) and "
             f"`{GPU_CHECK.name}` (one H200 machine). An estimate, not a measurement: no multi-machine cluster was "
             "available.", "",
             "## What was measured", "",
             f"- Work per image: the default model counts at scale {scale:.3f} (red cells ~100 px brought to its "
             f"56 px), so a {w}x{h} image is {w * h * scale ** 2 / 1e6:.1f} model Mpx, plus a 0.26 Mpx probe window "
             "for the automatic scale.",
             f"- One GPU machine's rate: the whole `Counter` pipeline (read, tile, infer, decode, merge) on the H200 "
             f"machine ran {gpu_mpx_s:.1f} model Mpx/s end to end ({e2e['backend'] if e2e else 'torch fp32'}, batch "
             f"{e2e['batch'] if e2e else 32}, {e2e['tiles_per_s'] if e2e else 494:.0f} tiles/s of 512 px); bare "
             "inference was 2.4x that, so the host side bounds it. This CPU machine: "
             f"{1 / report['local_s_per_model_mpx']:.2f} model Mpx/s.",
             _overhead_line(report, ray_overhead_s),
             f"- Transfers: a job {t['image_job_bytes']} B; a result {t['result_bytes_per_cell']:.0f} B per cell "
             f"(~{cells_per_mpx:.0f} cells per image Mpx on these smears); a band's result "
             f"{t['band_result_bytes_per_tile']:.0f} B per tile. Pixels never travel through Ray: workers read "
             f"files from shared storage (a {w}x{h} PNG smear is ~{file_mb:.0f} MB).", "",
             f"## Archive: {n:,} images of {w}x{h}", "",
             f"Per image on one GPU machine: {per_image_gpu_s * 1000:.0f} ms of compute ({1 / per_image_gpu_s:.1f} "
             f"images/s). Each image needs its file read ({file_mb:.0f} MB) and sends back "
             f"~{t['result_bytes_per_cell'] * cells_per_mpx * w * h / 1e6 / 1024:.0f} KB. Images are independent at a "
             "fixed scale (`--cell-size` / `--um-per-px`), so N machines give N times one machine until shared "
             "storage or the driver saturates:", "",
             "| machines N | compute-bound images/s | storage read MB/s | wall time for 10,000 |", "|---:|---:|---:|---:|"]
    for machines in (1, 2, 4, 8, 16, 32):
        rate = machines / per_image_gpu_s
        lines.append(f"| {machines} | {rate:.0f} | {rate * file_mb:,.0f} | {n / rate / 60:.1f} min |")
    lines += ["", f"- Storage: a 10 Gbit/s NFS share (~1,100 MB/s) feeds ~{1100 / file_mb:.0f} images/s, i.e. "
              f"~{1100 / file_mb * per_image_gpu_s:.0f} machines; beyond that, compressed TIFF/JPEG archives or "
              "local copies are needed. The driver's share per image is one task and a "
              f"{t['result_bytes_per_cell'] * cells_per_mpx * w * h / 1e6 / 1024:.0f} KB result (assumed ~1 ms of "
              "Ray bookkeeping each, not measured here: ~1,000 images/s), above the storage limit.",
              "- Automatic scale: an image's first guess is the median of the previous images' scales (as in the "
              "local run), so a cluster stays identical to the local run only by recounting images whose "
              "speculative guess was wrong; when successive images' estimates differ (large images, each "
              "estimated afresh) this approaches one image at a time. For archives give the scale "
              "(`--cell-size` or `--um-per-px`): then the table holds.",
              "- Start-up: each worker loads the model once (seconds; a TensorRT engine minutes), amortised over "
              "the run.", "",
              f"## One slide of {SLIDE[0]:,} x {SLIDE[1]:,} ({slide_mpx / 1000:.0f} Gpx)", "",
              f"At scale {scale:.3f} it is {slide_model_mpx:,.0f} model Mpx per full pass; the automatic scale "
              "adds a probe window (a central crop counted at the guess) before the full pass at the measured scale "
              "(with `--cell-size`: the full pass alone). The grid is split into bands of at most 256 tiles, about four per "
              "worker, each worker reading only its strips of the BigTIFF from shared storage.", "",
              "| machines N | one pass | slide read MB/s per pass (RGB, uncompressed) | results to the driver |",
              "|---:|---:|---:|---:|"]
    slide_mb = slide_mpx * 3
    for machines in (1, 4, 16, 64):
        seconds = slide_model_mpx / gpu_mpx_s / machines
        lines.append(f"| {machines} | {seconds:.1f} s | {slide_mb / seconds:,.0f} | "
                     f"{slide_cells * t['result_bytes_per_cell'] / 2**20:,.0f} MB |")
    lines += ["", f"- The driver merges all tiles once per pass (~{slide_cells / 1e6:.1f} M cells): the seam-exact "
              "core merge with numba NMS took 53 ms for 100k cells on one CPU core here (`merge_speed_cpu.md`), "
              f"about linear, so ~{slide_cells / 1e5 * 0.053:.1f} s on the driver after the last band returns "
              "(sequential: it adds to every pass, and bounds the slide's speed-up near 64 machines).",
              f"- Bands make the slide scale like the archive until storage bandwidth (table) or the driver's merge "
              f"dominates. Uncompressed, the slide is {slide_mb / 1024:.0f} GB per pass: one 10 Gbit/s link "
              f"(~1,100 MB/s) reads it in {slide_mb / 1100:.0f} s, so past ~{1100 / (slide_mb / (slide_model_mpx / gpu_mpx_s)):.1f} "
              "machines the pass is storage-bound; a compressed (JPEG-in-TIFF) slide or a parallel file system "
              "moves that bound, the driver's merge then bounds it near 64 machines.", ""]
    return "\n".join(lines)


def _overhead_line(report: dict, overhead_s: float) -> str:
    rows = {(r["mode"], r["engine"], r["workers"]): r for r in report["rows"]}
    mode = "fixed scale (cell_size=100)"
    local, one = rows[(mode, "local", None)], rows[(mode, "ray", 1)]
    if overhead_s > 0:
        return (f"- Engine overhead per image (Ray, 1 worker, fixed scale, against the local run): "
                f"{overhead_s * 1000:.0f} ms here.")
    return (f"- Engine overhead per image: below this machine's noise. The 1-worker cluster counted the "
            f"{report['images']['count']} images in {one['seconds']:.2f} s, the local run in {local['seconds']:.2f} s: "
            "the local run's two ONNX Runtime threads contended with other jobs on the two shared cores, the "
            "worker ran one. Ray's own cost per image, a task round trip and a few-KB result, does not show at this scale.")


def _ray_overhead(report: dict) -> float:
    rows = {(r["mode"], r["engine"], r["workers"]): r for r in report["rows"]}
    mode = "fixed scale (cell_size=100)"
    local, one = rows[(mode, "local", None)], rows[(mode, "ray", 1)]
    return max(0.0, (one["seconds"] - local["seconds"]) / report["images"]["count"])


def _stem(report: dict) -> str:
    return f"ray_throughput_{machine_slug(report['machine'], with_isa=True)}"


if __name__ == "__main__":
    main()
