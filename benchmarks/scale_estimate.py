"""The auto scale estimate: what it costs, how close it gets, and that it leaves images at the model's scale alone.

    python benchmarks/scale_estimate.py [--model default] [--txl ../shared/data/txl-pbc] [--bccd ../shared/data/bccd]

Per source group of BCCD val and TXL-PBC val:
- cost: the time of the first guess and of passes that were thrown away (a first guess that was off, the other
  scales an unsure first pass makes the counter try, a recount after a refined estimate) over the time of the
  counting passes that were kept, for a fresh ``Counter`` per image (no history: the worst case), with its first
  guess read from the image's thumbnail (``bcedge.runtime.scale_prior``) and, side by side, from the training
  images' scale; and for one ``Counter`` per group (a rig's stream or folder, where the last image's scale is the
  next one's guess); and for one ``Counter`` over the whole of TXL-PBC val in file-name order (a folder its four
  microscopes write into, interleaved); and the light checks' time (lamp and field stop, ``bcedge.runtime.corrections``)
  on the same scale;
- accuracy: the estimated red-cell diameter against the median of the image's labelled whole red cells;
- invariance: each val split resampled so its red cells (by the labels) are at the model's working scale,
  counted with the auto estimate and with ``--cell-size`` at that scale: the largest per-image count change,
  the image it happened on, and the change of each class's total;
- ``--reuse-tolerances 0.10 0.15``: the same cost per group, and both val splits' accuracy through the runtime,
  for each tolerance within which a first pass is kept (``bcedge.runtime.scale.REUSE_TOLERANCE``).
Writes benchmarks/results/scale_estimate_<machine>.json and .md.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bcedge.artifact import read_meta  # noqa: E402
from bcedge.bench.machine import describe_machine, machine_line, machine_slug  # noqa: E402
from bcedge.catalogue import resolve_model  # noqa: E402
from bcedge.data.cellsize import image_cell_sizes  # noqa: E402
from bcedge.data.multisource import SourceSpec, load_sources  # noqa: E402
from bcedge.evaluate.runtime_eval import evaluate_runtime  # noqa: E402
from bcedge.imageio import read_image  # noqa: E402
from bcedge.runtime import scale as scaling  # noqa: E402
from bcedge.runtime.corrections import measured_corrections  # noqa: E402
from bcedge.runtime.counter import Counter  # noqa: E402
from bcedge.runtime.scale import model_cell_px  # noqa: E402
from bcedge.runtime.sources import ArraySource  # noqa: E402

CLASSES = ["RBC", "WBC", "Platelets"]


class Cost:
    """Estimate time over kept counting time, summed over images."""

    def __init__(self) -> None:
        self.waste = self.kept = 0.0

    def add(self, result) -> None:
        waste = result.timings.get("estimate_s", 0.0)
        self.waste, self.kept = self.waste + waste, self.kept + result.timings["total_s"] - waste

    @property
    def share(self) -> float:
        return round(self.waste / max(self.kept, 1e-9), 3)


def light_check_seconds(path: Path) -> float:
    """The time the counter spends measuring an image's lamp and field stop (``bcedge.runtime.corrections``), on the
    decoded image: the decode is work its count needs anyway."""
    source = ArraySource(read_image(path))
    started = time.perf_counter()
    measured_corrections(source)
    return time.perf_counter() - started


def run_group(model: Path, records, sizes) -> dict:
    fresh, fresh_untold, stream = Cost(), Cost(), Cost()
    errors, passes, passes_untold, light_s = [], [], [], 0.0
    rig = Counter.load(model, device="cpu")
    for record, truth in zip(records, sizes):
        result = Counter.load(model, device="cpu").count_file(record.image_path)
        fresh.add(result)
        passes.append(result.scale.passes)
        if result.scale.cell_px and np.isfinite(truth):
            errors.append(abs(result.scale.cell_px / truth - 1))
        untold = Counter.load(model, device="cpu", scale_prior=False).count_file(record.image_path)
        fresh_untold.add(untold)
        passes_untold.append(untold.scale.passes)
        stream.add(rig.count_file(record.image_path))
        light_s += light_check_seconds(record.image_path)
    return {"images": len(records), "estimate_share_fresh": fresh.share,
            "estimate_share_fresh_training_guess": fresh_untold.share, "estimate_share_stream": stream.share,
            "light_check_share_fresh": round(light_s / max(fresh.kept, 1e-9), 3),
            "second_pass_share_fresh": round(float(np.mean([p > 1 for p in passes])), 3),
            "second_pass_share_fresh_training_guess": round(float(np.mean([p > 1 for p in passes_untold])), 3),
            "cell_px_error_median": round(float(np.median(errors)), 3) if errors else None,
            "cell_px_error_p90": round(float(np.percentile(errors, 90)), 3) if errors else None}


def run_folder(model: Path, records) -> dict:
    """One counter over ``records`` in their order (a folder several microscopes write into): cost and passes."""
    cost, passes, counter = Cost(), [], Counter.load(model, device="cpu")
    for record in records:
        result = counter.count_file(record.image_path)
        cost.add(result)
        passes.append(result.scale.passes)
    return {"images": len(records), "estimate_share": cost.share, "passes_mean": round(float(np.mean(passes)), 3),
            "second_pass_share": round(float(np.mean([p > 1 for p in passes])), 3),
            "frame_size_changes": sum((a.width, a.height) != (b.width, b.height) for a, b in itertools.pairwise(records))}


def invariance(model: Path, data, sizes) -> dict:
    """Counts at the model's own scale (by the labels): auto estimate against the exact scale given."""
    counter_auto = Counter.load(model, device="cpu")
    target = model_cell_px(counter_auto.meta)
    counter_exact = Counter.load(model, device="cpu", cell_size=target)
    changes, unscaled, worst = [], 0, None
    totals = {name: [0, 0] for name in CLASSES}
    for record, cell in zip(data.images, sizes):
        image = cv2.imread(str(record.image_path))
        factor = target / cell
        resized = cv2.resize(image, (round(record.width * factor), round(record.height * factor)), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
        auto, exact = counter_auto.count(rgb), counter_exact.count(rgb)
        unscaled += auto.scale.factor == 1.0
        for name in CLASSES:
            change = abs(auto.counts[name] - exact.counts[name]) / max(exact.counts[name], 1)
            changes.append(change)
            totals[name][0] += abs(auto.counts[name] - exact.counts[name])
            totals[name][1] += exact.counts[name]
            if change and (worst is None or change > worst["change"]):
                worst = {"image": record.image_path.name, "class": name, "change": round(change, 4),
                         "counts": [exact.counts[name], auto.counts[name]], "factor": round(auto.scale.factor, 3),
                         "estimated_px": round(auto.scale.cell_px or 0, 1), "label_px": round(float(target), 1)}
    return {"images": len(data), "counted_unresampled": int(unscaled), "max_count_change": round(float(max(changes)), 4),
            "mean_count_change": round(float(np.mean(changes)), 4), "worst": worst,
            "total_change": {n: round(d / max(t, 1), 4) for n, (d, t) in totals.items()}}


def tolerance_sweep(model: Path, data, sizes, tolerances: list[float], txl: Path, bccd: Path) -> dict:
    """Rig cost per group and accuracy on both val splits, for each first-pass tolerance."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT / "export"))
    from build_default_model import val_sets
    from working_scale import row

    sets, shipped, out = val_sets(txl, bccd), scaling.REUSE_TOLERANCE, {}
    try:
        for tolerance in tolerances:
            scaling.REUSE_TOLERANCE = tolerance
            groups = {g: run_group(model, *group_of(data, sizes, g))["estimate_share_stream"] for g in group_names(data)}
            accuracy = {name: row(evaluate_runtime(model, split, device="cpu")[0]) for name, split in sets.items()}
            out[f"{tolerance:g}"] = {"rig_cost": groups, "accuracy": accuracy}
            print("reuse tolerance", tolerance, out[f"{tolerance:g}"], flush=True)
    finally:
        scaling.REUSE_TOLERANCE = shipped
    return out


def group_names(data) -> list[str]:
    return sorted({r.group for r in data.images})


def group_of(data, sizes, group: str):
    index = [i for i, r in enumerate(data.images) if r.group == group]
    return [data.images[i] for i in index], sizes[index]


def invariance_rows(same: dict) -> str:
    return "\n".join(f"| {split} | {v['images']} | {v['counted_unresampled']} | {v['max_count_change']:.1%} | "
                     f"{v['mean_count_change']:.2%} | " + ", ".join(f"{n} {c:.2%}" for n, c in v["total_change"].items()) + " |"
                     for split, v in same.items())


def worst_lines(same: dict) -> str:
    lines = []
    for split, v in same.items():
        w = v["worst"]
        if w:
            lines.append(f"- {split}, largest change: `{w['image']}`, {w['class']} {w['counts'][0]} -> {w['counts'][1]}; the "
                         f"detector measured its red cells at {w['estimated_px']:g} px where the labels say {w['label_px']:g}, "
                         f"so it was counted at factor {w['factor']:g}.")
    return "\n".join(lines)


def sweep_table(sweep: dict) -> str:
    if not sweep:
        return ""
    groups = list(next(iter(sweep.values()))["rig_cost"])
    lines = ["## First-pass tolerance", "",
             "| tolerance | " + " | ".join(f"rig cost {g}" for g in groups) +
             " | TXL-PBC mAP50 | TXL-PBC RBC count MAE | BCCD mAP50 | BCCD RBC recall |",
             "|---:|" + "---:|" * (len(groups) + 4)]
    for tolerance, v in sweep.items():
        t, b = v["accuracy"]["txl_pbc_val"], v["accuracy"]["bccd_val"]
        lines.append(f"| {float(tolerance):.0%} | " + " | ".join(f"{v['rig_cost'][g]:.0%}" for g in groups) +
                     f" | {t['mAP50']:.4f} | {t['rbc_count_mae']:.3f} | {b['mAP50']:.4f} | {b['rbc_recall']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--txl", type=Path, default=ROOT.parent / "shared/data/txl-pbc")
    parser.add_argument("--bccd", type=Path, default=ROOT.parent / "shared/data/bccd")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--reuse-tolerances", type=float, nargs="*", default=[],
                        help="also sweep the first-pass tolerance over these values (cost and accuracy)")
    args = parser.parse_args()
    model = resolve_model(args.model)
    data = load_sources([SourceSpec(args.bccd, "val", group_by="size"), SourceSpec(args.txl, "val", group_by="size")], CLASSES)
    sizes = image_cell_sizes(data)
    groups = {}
    for group in group_names(data):
        groups[group] = run_group(model, *group_of(data, sizes, group))
        print(group, groups[group], flush=True)
    txl_order = sorted((r for r in data.images if r.group.startswith(args.txl.resolve().name + "/")),
                       key=lambda r: r.image_path.name)
    mixed = run_folder(model, txl_order)
    print("TXL-PBC val as one folder", mixed, flush=True)
    same = {}
    for split, folder in (("BCCD val", args.bccd), ("TXL-PBC val", args.txl)):
        index = [i for i, r in enumerate(data.images) if r.group.startswith(folder.resolve().name + "/")]
        same[split] = invariance(model, data.subset(index), sizes[index])
        print("at the model's scale,", split, same[split], flush=True)
    sweep = tolerance_sweep(model, data, sizes, args.reuse_tolerances, args.txl, args.bccd) if args.reuse_tolerances else {}
    machine = describe_machine()
    report = {"model": str(model), "reuse_tolerance": scaling.REUSE_TOLERANCE, "snap": scaling.SNAP, "groups": groups,
              "txl_pbc_val_as_one_folder": mixed, "at_model_scale": same, "reuse_tolerance_sweep": sweep, "machine": machine}
    slug = machine_slug(machine)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"scale_estimate_{slug}.json").write_text(json.dumps(report, indent=1, default=str))
    rows = "\n".join(f"| {g} | {v['images']} | {v['estimate_share_fresh'] * 100:.0f}% | "
                     f"{v['estimate_share_fresh_training_guess'] * 100:.0f}% | {v['estimate_share_stream'] * 100:.0f}% | "
                     f"{v['second_pass_share_fresh'] * 100:.0f}% | {v['second_pass_share_fresh_training_guess'] * 100:.0f}% | "
                     f"{(v['cell_px_error_median'] or 0) * 100:.1f}% | "
                     f"{(v['cell_px_error_p90'] or 0) * 100:.1f}% | {v['light_check_share_fresh'] * 100:.1f}% |"
                     for g, v in groups.items())
    (args.out / f"scale_estimate_{slug}.md").write_text(f"""# Auto scale estimate ({machine_line(machine)})

Model `{model.name}`; first pass kept within {scaling.REUSE_TOLERANCE:.0%} of the estimate, no resampling within
{scaling.SNAP:.0%} of the working scale. Cost: time of the first guess and of discarded passes (first guesses, other
scales tried, recounts) over time of kept counting passes (target < 15%). A fresh counter's first guess is read from
the image's thumbnail (`bcedge.runtime.scale_prior`); "training guess": the same counter starting from the training
images' typical scale instead (`scale_prior=False`), in the same run. Light checks: the time the counter spends measuring
each image's lamp and field stop (`bcedge.runtime.corrections`, timed on the decoded image; part of counting, not of
the estimate), over the same kept counting time.

| group | images | cost, fresh counter per image | same, training guess | cost, one counter per group (a rig) | second pass, fresh | same, training guess | cell size error, median | p90 | light checks |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

TXL-PBC val as one folder (one counter, file-name order: its four microscopes interleaved, {mixed['frame_size_changes']}
changes of frame size in {mixed['images']} images; an image of another frame size starts from its thumbnail's
guess where that is over 15% from the last images' scale): cost {mixed['estimate_share'] * 100:.0f}%, {mixed['passes_mean']:.2f} passes per image, second pass on
{mixed['second_pass_share'] * 100:.0f}% of images.

## At the model's own scale

Each val split resampled so that its red cells, by the median of the labelled whole red cells, are
{model_cell_px(read_meta(model)):g} px; counted with the auto estimate and with the exact scale given.
Target: no count changed by more than 1%.

| split | images | counted without resampling | largest per-image, per-class change | mean | change of each class's total |
|---|---:|---:|---:|---:|---|
{invariance_rows(same)}

{worst_lines(same)}

{sweep_table(sweep)}""")
    print(f"wrote {args.out / f'scale_estimate_{slug}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
