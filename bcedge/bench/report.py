"""Benchmark results as a markdown table, a latency-versus-accuracy Pareto plot (PNG), and side by side.

    write_all(results, Path("benchmarks/results/matrix_cpu_amd-epyc-2cpu"))   # .md and .png next to the .json
    print(compare([load("a.json"), load("b.json")]))                         # machines side by side
"""
from __future__ import annotations

import json
from pathlib import Path

from bcedge.bench.machine import machine_line
from bcedge.bench.matrix import status_kind

RUNNER_NAMES = {"torch:cpu": "torch eager CPU", "torch:cuda": "torch eager CUDA", "onnxruntime:cpu": "ONNX Runtime CPU",
                "onnxruntime:cuda": "ONNX Runtime CUDA EP", "onnxruntime:tensorrt": "ONNX Runtime TensorRT EP",
                "tensorrt:cuda": "TensorRT"}
CLASS_SHORT = {"Platelets": "Plt"}


def load(path: str | Path) -> dict:
    path = Path(path)
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable benchmark results file ({exc})") from exc
    if results.get("format") != "bcedge-bench":
        raise ValueError(f"{path}: not a bcedge benchmark results file (no 'format': 'bcedge-bench')")
    return results


def _runner(cell: dict) -> str:
    return f"{cell['backend']}:{cell['device']}"


def _f(value, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _pct(share: float | None) -> str:
    return "" if share is None else f"{100 * share:.0f}%"


def _stage(cell: dict) -> str:
    return "two-stage" if cell.get("two_stage") else "single-stage"


def _factor(cell: dict) -> float | None:
    """The scale the smear was counted at (model pixels per smear pixel), for a scale-aware model."""
    if not cell.get("working_scale_cell_px"):
        return None
    return ((cell.get("smear") or {}).get("scale") or {}).get("factor")


def scale_text(cell: dict) -> str:
    """The working scale column: "as is", or the resampling of a scale-aware model (its red-cell size)."""
    cell_px = cell.get("working_scale_cell_px")
    if not cell_px:
        return "as is"
    factor = _factor(cell)
    return f"x{factor:.2f} (RBC {cell_px:g} px)" if factor else f"RBC {cell_px:g} px"


def scale_note(results: dict) -> list[str]:
    """Why a scale-aware model's per-tile figures are not per image: its tile covers more of the smear."""
    ok = [c for c in results["cells"] if c["status"] == "ok"]
    others = sorted({c["smear"]["tiles"] for c in ok if not c.get("working_scale_cell_px")})
    lines = []
    for arch in sorted({c["arch"] for c in ok if c.get("working_scale_cell_px")}):
        cells = [c for c in ok if c["arch"] == arch]
        factors = sorted(f for f in map(_factor, cells) if f)
        if not factors:
            continue
        factor, tile = factors[len(factors) // 2], cells[0]["tile"]
        frames = [a["scale"]["factor_median"] for c in cells if (a := c.get("accuracy") or {}).get("status") == "ok"
                  and (a.get("scale") or {}).get("factor_median")]
        frame = f", BCCD val frames by x{frames[0]:.2f} (median)" if frames else ""
        shares = sorted(c["smear"]["estimate_s"] / c["smear"]["median_s"] for c in cells
                        if c["smear"].get("estimate_s") and c["smear"].get("median_s"))
        estimate = (f"; the scale estimate, a first pass over a central crop, is {100 * shares[0]:.0f}-{100 * shares[-1]:.0f}% "
                    "of its smear time") if shares else ""
        lines.append(
            f"{arch} is scale-aware: it resamples each image so red cells are {cells[0]['working_scale_cell_px']:g} px "
            f"(this smear by x{factor:.2f}{frame}), so its {tile[0]}x{tile[1]} tile covers {1 / factor ** 2:.1f}x the "
            "smear area of a fixed-scale model's tile. Its ms/tile and tiles/s are per equal tensor, not per equal "
            f"area; the smear column (the same image end to end: {'/'.join(map(str, sorted({c['smear']['tiles'] for c in cells})))} "
            f"tiles against {'/'.join(map(str, others)) or '?'} for the fixed-scale models{estimate}) is the fair "
            "comparison. Its accuracy is BCCD val counted as `bcedge count` counts it (each frame resampled, one exact tile).")
    return lines + [""] if lines else []


def accuracy_text(cell: dict) -> tuple[str, str, str]:
    """(mAP50, mAP, count MAE per class) as table text; the status when accuracy was not measured."""
    acc = cell.get("accuracy") or {}
    if acc.get("status") != "ok":
        return acc.get("status", ""), "", ""
    counts = "/".join(_f(v, 2) for v in acc.get("count_mae", {}).values())
    return _f(acc["mAP50"], 3), _f(acc["mAP"], 3), counts


def cell_line(cell: dict) -> str:
    """One progress line for a finished cell."""
    if cell["status"] != "ok":
        return cell["status"]
    t = cell["latency_per_tile"]
    acc = cell.get("accuracy") or {}
    quality = f", mAP50 {acc['mAP50']:.3f}" if acc.get("status") == "ok" else ""
    return (f"p50 {t['p50_ms']:.1f} ms/tile (p95 {t['p95_ms']:.1f}, n={t['n']}, outliers {t['outliers']['count']}), "
            f"{cell['throughput']['tiles_per_s']:.2f} tiles/s, smear {cell['smear']['median_s']:.2f} s, "
            f"peak {cell['memory']['host_peak_mb']:.0f} MB{quality}")


def _class_names(results: dict) -> list[str]:
    for cell in results["cells"]:
        if (cell.get("accuracy") or {}).get("status") == "ok":
            return [CLASS_SHORT.get(n, n) for n in cell["accuracy"]["count_mae"]]
    return ["RBC", "WBC", "Plt"]


def to_markdown(results: dict, title: str | None = None) -> str:
    """The matrix as markdown: how it was measured, the measured cells, then the cells that did not run."""
    m, p = results["machine"], results["profile"]
    timing = p["timing"]
    ok = [c for c in results["cells"] if c["status"] == "ok"]
    memory = next((c["memory"] for c in ok), {})
    lines = [f"# {title or 'Benchmark matrix: ' + p['name']}", "",
             f"Machine: {machine_line(m)}; {m.get('platform', '')}, Python {m.get('python', '')}; "
             + ", ".join(f"{k} {v}" for k, v in m.get("libraries", {}).items())
             + f". Load average at start {m.get('load_average_at_start')}"
             + (f", at end {results['load_average_at_end']}." if results.get("load_average_at_end") else ".")
             + (f" {m['note']}" if m.get("note") else ""), ""]
    if m.get("jetson"):
        lines += [f"Jetson: {m['jetson'].get('model')}, {m['jetson'].get('l4t')}, power mode: {m['jetson'].get('power_mode')}.", ""]
    shares = sorted(c["other_cpu_share"] for c in ok if c.get("other_cpu_share") is not None)
    if shares:
        lines += [f"Other processes used {100 * shares[len(shares) // 2]:.0f}% of the machine's CPU during the median cell "
                  f"(most: {100 * shares[-1]:.0f}%); 0% would be an idle machine.", ""]
    passes = results.get("resumed", [])
    when = f"Run {results.get('started', '?')}, {results.get('wall_s', '?')} s"
    if passes:
        total = results.get("wall_s_earlier_passes", 0.0) + results.get("wall_s", 0.0)
        when += (f" in the last of {len(passes) + 1} passes ({total:.0f} s in all; later passes reran only the cells "
                 "that other processes had disturbed, each once the machine was quiet)")
    lines += [f"{when}. Profile `{p['name']}`: {p.get('description', '')}.", "",
              f"Method: per cell a fresh process; {timing['warmup']} warm-up calls, then at least {timing['min_iterations']} "
              f"timed calls and {timing['min_time_s']} s (at most {timing['max_iterations']} calls / {timing['max_time_s']} s) "
              "of `backend.infer` on one batch of real tiles (cut from a synthetic smear), with the device synchronised "
              "inside each sample where a backend returns before it finishes. ms/tile = batch time / batch size; "
              "every sample counts, outliers (Tukey fences, 1.5 IQR) are counted in the table, not removed. "
              "Throughput from the mean. Smear: one whole "
              f"{p['smear'][0]}x{p['smear'][1]} synthetic smear (red cells ~100 px, BCCD's scale) counted end to end "
              f"with `Counter` at the cell's tile (tiling with {p.get('smear_overlap', '?')} px overlap for every "
              "fixed-scale model, a scale-aware model with its own overlap in its pixels after estimating the scale "
              f"and resampling; preprocessing, inference, decoding, merging), median of {p['e2e_runs']} after a warm-up. "
              f"Memory: {memory.get('method', 'n/a')}. "
              f"Accuracy: {results.get('accuracy_data') or 'no labelled set'}, as `bcedge eval` measures it (every image "
              "through `Counter`, as `bcedge count` counts it); mAP50 and COCO mAP at a 0.001 score floor, "
              "count MAE per image at the model's thresholds (" + "/".join(_class_names(results)) + "); untrained "
              "architectures are timed only (weights do not change speed).", ""]
    lines += ["## Summary", "", summary_markdown(results), *scale_note(results), "## Every cell", ""]
    lines += ["| model | stage | runner | precision | batch | size MB | ms/tile mean | p50 | p95 | p99 | outliers | "
              "tiles/s | MP/s | smear s | host MB infer / peak | device MB | mAP50 | mAP | count MAE | others' CPU |",
              "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for c in ok:
        t, acc = c["latency_per_tile"], accuracy_text(c)
        lines.append(
            f"| {c['arch']} | {_stage(c)} | {RUNNER_NAMES.get(_runner(c), _runner(c))} | {c['precision']} | {c['batch']} | "
            f"{_f(c.get('size_mb'), 1)} | {_f(t['mean_ms'])} | {_f(t['p50_ms'])} | {_f(t['p95_ms'])} | {_f(t['p99_ms'])} | "
            f"{t['outliers']['count']}/{t['n']} | {_f(c['throughput']['tiles_per_s'], 2)} | "
            f"{_f(c['throughput']['megapixels_per_s'], 2)} | {_f(c['smear']['median_s'], 2)} | "
            f"{_f(c['memory'].get('host_peak_infer_mb'), 0)} / {_f(c['memory']['host_peak_mb'], 0)} | "
            f"{_f(c['memory'].get('device_peak_mb'), 0)} | {acc[0]} | {acc[1]} | {acc[2]} | {_pct(c.get('other_cpu_share'))} |")
    lines += _power_lines(ok) + _not_run_lines(results["cells"])
    return "\n".join(lines) + "\n"


def summary_markdown(results: dict) -> str:
    """One row per (model, runner, precision): batch-1 latency, best throughput over batches, smear, accuracy."""
    groups: dict[tuple, list[dict]] = {}
    for c in results["cells"]:
        if c["status"] == "ok":
            groups.setdefault((c["arch"], _runner(c), c["precision"], tuple(c["tile"])), []).append(c)
    lines = ["| model | stage | runner | precision | working scale | ms/tile p50 (batch 1) | best tiles/s (batch) | "
             "smear s (batch) | host peak MB | mAP50 | mAP |", "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for (arch, runner, precision, _tile), cells in groups.items():
        one = min(cells, key=lambda c: c["batch"])
        best = max(cells, key=lambda c: c["throughput"]["tiles_per_s"])
        fastest = min(cells, key=lambda c: c["smear"]["median_s"])
        acc = accuracy_text(one)
        peak = max(c["memory"]["host_peak_mb"] for c in cells)
        lines.append(f"| {arch} | {_stage(one)} | {RUNNER_NAMES.get(runner, runner)} | {precision} | {scale_text(one)} | "
                     f"{_f(one['latency_per_tile']['p50_ms'])} | "
                     f"{_f(best['throughput']['tiles_per_s'], 2)} ({best['batch']}) | "
                     f"{_f(fastest['smear']['median_s'], 2)} ({fastest['batch']}) | {_f(peak, 0)} | {acc[0]} | {acc[1]} |")
    return "\n".join(lines) + "\n"


def _power_lines(cells: list[dict]) -> list[str]:
    powered = [c for c in cells if c.get("power", {}).get("total_power_mw")]
    if not powered:
        return []
    lines = ["", "Power while timing (board input rail, tegrastats/jtop):", "",
             "| model | runner | precision | batch | mean W | max W | tiles/J | GPU % |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for c in powered:
        watts = c["power"]["total_power_mw"]["mean"] / 1e3
        most = c["power"]["total_power_mw"]["max"] / 1e3
        gpu = c["power"].get("gpu_pct", {}).get("mean")
        lines.append(f"| {c['arch']} | {_runner(c)} | {c['precision']} | {c['batch']} | {watts:.2f} | {most:.2f} | "
                     f"{c['throughput']['tiles_per_s'] / watts:.2f} | {_f(gpu, 0)} |")
    return lines


def _not_run_lines(cells: list[dict]) -> list[str]:
    """Cells that did not run, grouped over batch sizes: (arch, runner, precision) -> status."""
    groups: dict[tuple, list] = {}
    for c in cells:
        if c["status"] != "ok":
            groups.setdefault((c["arch"], _runner(c), c["precision"], tuple(c["tile"]), c["status"]), []).append(c["batch"])
    if not groups:
        return []
    lines = ["", "Cells not measured, and why:", "", "| model | runner | precision | tile | batches | status |",
             "|---|---|---|---|---|---|"]
    for (arch, runner, precision, tile, status), batches in groups.items():
        lines.append(f"| {arch} | {runner} | {precision} | {tile[0]}x{tile[1]} | {', '.join(map(str, batches))} | "
                     f"{status.replace('|', '/')} |")
    return lines


# --- the Pareto plot ----------------------------------------------------------------------------------
def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both lower latency (x) and higher accuracy (y), by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def pareto_plot(results: dict, out: str | Path) -> Path:
    """Latency per tile (p50) against mAP50 for the scored cells, and latency of every measured cell.

    Two-stage cells are squares, single-stage circles; colour is the runner and precision.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [c for c in results["cells"] if c["status"] == "ok"]
    styles = sorted({f"{_runner(c)} {c['precision']}" for c in ok})
    colours = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(styles)}
    marker = {True: "s", False: "o"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 6.5), gridspec_kw={"width_ratios": [1, 1.2]})

    scored = [c for c in ok if (c.get("accuracy") or {}).get("status") == "ok"]
    points = [(c["latency_per_tile"]["p50_ms"], c["accuracy"]["mAP50"]) for c in scored]
    several = len({c["arch"] for c in scored}) > 1
    for k, (c, (x, y)) in enumerate(zip(scored, points)):
        left.scatter(x, y, marker=marker[bool(c.get("two_stage"))], s=40 + 25 * c["batch"],
                     color=colours[f"{_runner(c)} {c['precision']}"], edgecolor="black", linewidth=0.6, zorder=3)
        label = f"{c['arch'].removesuffix('_efficientnet_lite0')} b{c['batch']}" if several else f"b{c['batch']}"
        left.annotate(label, (x, y), textcoords="offset points", xytext=(5, 6 if k % 2 else -11), fontsize=7)
    if points:
        low, high = min(p[1] for p in points), max(p[1] for p in points)
        left.set_ylim(max(0.0, low - 0.05), min(1.0, high + 0.03))   # small differences stay small
        left.set_xscale("log")
        front = [points[i] for i in pareto_front(points)]
        left.step([p[0] for p in front], [p[1] for p in front], where="post", color="grey", linestyle="--",
                  linewidth=1, zorder=2, label="Pareto front")
        left.legend(loc="lower right", fontsize=8)
    else:
        left.text(0.5, 0.5, "no trained model in this run:\naccuracy not measured", ha="center", va="center",
                  transform=left.transAxes)
    left.set_xlabel("latency per tile, p50 (ms, log); marker size grows with the batch")
    left.set_ylabel(f"mAP50 ({results.get('accuracy_data') or 'no labelled set'})")
    left.set_title("Latency vs accuracy (trained models)")
    left.grid(alpha=0.3)

    archs = sorted({c["arch"] for c in ok}, key=lambda a: (not any(c.get("two_stage") for c in ok if c["arch"] == a), a))
    for c in ok:
        y = archs.index(c["arch"]) + (0.25 if c["batch"] > 1 else -0.1)
        right.scatter(c["latency_per_tile"]["p50_ms"], y, marker=marker[bool(c.get("two_stage"))], s=35,
                      color=colours[f"{_runner(c)} {c['precision']}"], edgecolor="black", linewidth=0.5, zorder=3)
    right.set_ylim(-0.6, len(archs) - 0.4)
    right.set_yticks(range(len(archs)))
    right.set_yticklabels([f"{a}\n({'trained' if any(c['trained'] for c in ok if c['arch'] == a) else 'untrained'}"
                           f"{', scale-aware' if any(c.get('working_scale_cell_px') for c in ok if c['arch'] == a) else ''})"
                           for a in archs], fontsize=7)
    right.set_xscale("log")
    right.set_xlabel("latency per tile, p50 (ms, log); lower dot batch 1, upper dot larger batches")
    right.set_title("Latency of every measured cell")
    right.grid(alpha=0.3, which="both")
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colours[s], label=s) for s in styles]
    handles += [plt.Line2D([], [], marker=marker[two], linestyle="", color="white", markeredgecolor="black",
                           label="two-stage" if two else "single-stage") for two in (False, True)]
    right.legend(handles=handles, fontsize=7, loc="best")
    fig.suptitle(f"{results['profile']['name']} matrix on {machine_line(results['machine'])}", fontsize=10)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_all(results: dict, stem: str | Path) -> tuple[Path, Path]:
    """``stem``.md and ``stem``.png (the JSON is the runner's)."""
    stem = Path(stem)
    md = stem.with_name(stem.name + ".md")
    png = stem.with_name(stem.name + ".png")
    md.write_text(to_markdown(results) + f"\n![latency vs accuracy]({png.name})\n")
    pareto_plot(results, png)
    return md, png


# --- side by side -------------------------------------------------------------------------------------
def _short(cell: dict | None) -> str:
    if cell is None:
        return "-"
    if cell["status"] != "ok":
        return status_kind(cell["status"])
    return f"{cell['latency_per_tile']['p50_ms']:.1f} ms, {cell['throughput']['tiles_per_s']:.1f}/s"


def compare(all_results: list[dict], labels: list[str] | None = None) -> str:
    """Markdown: one row per cell key, one column per results file (p50 ms/tile and tiles/s), speed-up vs the first."""
    if not all_results:
        raise ValueError("nothing to compare: give at least one results file")
    labels = labels or [f"{r['profile']['name']} #{i + 1}" for i, r in enumerate(all_results)]
    lines = ["# Benchmark results side by side", ""]
    for label, r in zip(labels, all_results):
        jetson = r["machine"].get("jetson")
        extra = f", Jetson power mode {jetson.get('power_mode')}" if jetson else ""
        lines.append(f"- **{label}**: {machine_line(r['machine'])}{extra}; run {r.get('started', '?')}")
    keyed = [{(c["arch"], _runner(c), c["precision"], c["batch"], tuple(c["tile"])): c for c in r["cells"]} for r in all_results]
    keys = list(dict.fromkeys(k for table in keyed for k in table))
    header = "| model | runner | precision | batch | tile | " + " | ".join(labels)
    header += " | " + " | ".join(f"speed-up {lab}" for lab in labels[1:]) + " |" if len(labels) > 1 else " |"
    lines += ["", "Each entry: p50 latency per tile, tiles per second (or the status). Speed-up: first file's p50 / this one's.",
              "", header, "|" + "---|" * (5 + len(labels) + max(0, len(labels) - 1))]
    for key in keys:
        cells = [table.get(key) for table in keyed]
        row = f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {key[4][0]}x{key[4][1]} | " + " | ".join(_short(c) for c in cells)
        ups = []
        for c in cells[1:]:
            base = cells[0]
            both = base is not None and c is not None and base["status"] == "ok" and c["status"] == "ok"
            ups.append(f"{base['latency_per_tile']['p50_ms'] / c['latency_per_tile']['p50_ms']:.2f}x" if both else "")
        lines.append(row + (" | " + " | ".join(ups) if ups else "") + " |")
    return "\n".join(lines) + "\n"
