"""Counts under another lab's look: stain, lamp, focus and camera shifts of the val splits, no option given.

    python benchmarks/appearance.py [--models default] [--shifts none greyscale ...] [--bccd] [--unsmoothed] [--unevened]

Each shift of ``bcedge.data.appearance.SHIFTS`` (a redder or bluer stain, a pale stain, a lamp without
white balance, dark corners, defocus, a monochrome camera, JPEG, sensor noise of 10 and 20 grey levels) is applied to
TXL-PBC val (four sources, complete labels; ``--bccd`` adds BCCD val), and each model is evaluated on it
exactly as ``bcedge eval`` runs it (automatic scale, tiles, merge). Per shift and model: mAP50, AP50 per
class, recall at the operating thresholds and the median per-image red-cell count error. Models side by
side, in one run;
``--unsmoothed`` adds each model with the runtime's noise smoothing off (``bcedge.runtime.denoise``), ``--unevened``
with its lamp correction off (``bcedge.runtime.illumination``).
Writes benchmarks/results/appearance_<machine>.json and .md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import header, log, write_results  # noqa: E402
from bcedge.bench.machine import describe_machine, machine_slug  # noqa: E402
from bcedge.catalogue import resolve_model  # noqa: E402
from bcedge.data.appearance import SHIFTS, appearance_shifted  # noqa: E402
from bcedge.data.multisource import SourceSpec, load_sources  # noqa: E402
from bcedge.evaluate.runtime_eval import evaluate_runtime  # noqa: E402

CLASSES = ["RBC", "WBC", "Platelets"]


def row(metrics: dict) -> dict:
    per_class = metrics["per_class"]
    return {"mAP50": round(metrics["mAP50"], 4), "mAP": round(metrics["mAP"], 4),
            "ap50": {name: round(per_class[name]["AP50"], 4) for name in CLASSES},
            "recall": {name: round(per_class[name]["recall"], 4) for name in CLASSES},
            "rbc_count_median_rel_error": metrics["count_error"]["RBC"]["count_medre"]}


def markdown(report: dict) -> str:
    lines = header("Counts under other stains, lamps and cameras (no option given)", report["machine"],
                   "Each val split rewritten with one appearance shift (`bcedge.data.appearance`), boxes unchanged, "
                   "then evaluated as `bcedge eval` runs it. Recall at the model's operating thresholds; red-cell count "
                   "error: median per image. Models side by side, in one run.")
    lines += ["| data | shift | model | mAP50 | AP50 RBC | AP50 WBC | AP50 Platelets | recall WBC | recall Platelets | "
              "RBC count err. |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for split, shifts in report["splits"].items():
        for shift, models in shifts.items():
            for model, r in models.items():
                lines.append(f"| {split} | {shift} | {model} | {r['mAP50']:.3f} | {r['ap50']['RBC']:.3f} | "
                             f"{r['ap50']['WBC']:.3f} | {r['ap50']['Platelets']:.3f} | {100 * r['recall']['WBC']:.1f}% | "
                             f"{100 * r['recall']['Platelets']:.1f}% | {100 * r['rbc_count_median_rel_error']:.1f}% |")
    lines += ["", "Shifts:"] + [f"- {name}: {SHIFTS[name].what}" for name in report["shifts"]]
    return "\n".join(lines) + "\n"


def labelled(spec: str) -> tuple[str, str]:
    """``LABEL=MODEL`` -> (label, model); a bare model is its own label."""
    label, _, model = spec.partition("=")
    return (label, model) if model else (spec, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default"],
                        help="bundled names or artifact paths, each optionally as LABEL=MODEL")
    parser.add_argument("--shifts", nargs="+", default=list(SHIFTS), choices=list(SHIFTS))
    parser.add_argument("--txl", type=Path, default=ROOT.parent / "shared/data/txl-pbc")
    parser.add_argument("--bccd", type=Path, nargs="?", const=ROOT.parent / "shared/data/bccd", default=None,
                        help="also BCCD val (its labels miss cells: the TXL-PBC figures are the measure)")
    parser.add_argument("--unsmoothed", action="store_true", help="also each model with noise smoothing off")
    parser.add_argument("--unevened", action="store_true", help="also each model with its lamp correction off")
    parser.add_argument("--out", default=None, help="results file stem (default appearance_<machine>)")
    args = parser.parse_args(argv)
    splits = {"TXL-PBC val": load_sources([SourceSpec(args.txl, "val", group_by="size")], CLASSES)}
    if args.bccd:
        splits["BCCD val"] = load_sources([SourceSpec(args.bccd, "val")], CLASSES)
    models = {label: (resolve_model(model), {}) for label, model in map(labelled, args.models)}
    variants = {"not smoothed": {"denoise": False}} if args.unsmoothed else {}
    variants.update({"not evened": {"even_light": False}} if args.unevened else {})
    models.update({f"{label}, {variant}": (path, options) for label, (path, _) in list(models.items())
                   for variant, options in variants.items()})
    machine = describe_machine()
    report = {"models": {name: str(path) for name, (path, _) in models.items()}, "shifts": args.shifts,
              "machine": machine, "splits": {}}
    with tempfile.TemporaryDirectory(prefix="bcedge-appearance-") as work:
        for split, data in splits.items():
            report["splits"][split] = {}
            for index, shift in enumerate(args.shifts):
                shifted = data if shift == "none" else appearance_shifted(data, shift, Path(work) / f"{split}_{index}")
                report["splits"][split][shift] = {}
                for name, (path, options) in models.items():
                    log(f"{split}, {shift}, {name} ...")
                    metrics, _ = evaluate_runtime(path, shifted, device="cpu", **options)
                    report["splits"][split][shift][name] = row(metrics)
    write_results(args.out or f"appearance_{machine_slug(machine)}", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
