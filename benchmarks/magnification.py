"""Counts on other magnifications: the validation splits resampled by 0.3x to 5x, counted with no option.

    python benchmarks/magnification.py [--model default] [--factors 0.3 0.5 1 2 3.5 5] [--modes folder alone]

A lower-magnification objective or a smaller camera pixel gives the same smear at fewer pixels per cell,
a higher one at more. Each split (BCCD val, TXL-PBC val) is resampled by each factor (area averaging
down, cubic up; boxes scaled alike) and evaluated exactly as ``bcedge eval`` runs it: the automatic
scale estimate, tiles, merge. Per factor: mAP50, red-cell recall at IoU 0.5, the median per-image
red-cell count error and how the scale was found; once with one counter for the split (a folder: each image's
first guess is the last images' scale, or its thumbnail's where the frame size changes; TXL-PBC val interleaves
four microscopes in file-name order) and once with each image alone (a fresh
counter: the first guess is read from its thumbnail, ``bcedge.runtime.scale_prior``). Writes benchmarks/results/magnification_<machine>.json
and .md.
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
from bcedge.data.multisource import SourceSpec, load_sources  # noqa: E402
from bcedge.data.rescale import rescaled  # noqa: E402
from bcedge.evaluate.runtime_eval import evaluate_runtime  # noqa: E402

CLASSES = ["RBC", "WBC", "Platelets"]


def row(metrics: dict) -> dict:
    red = metrics["count_error"]["RBC"]
    return {"mAP50": round(metrics["mAP50"], 4), "recall_RBC": round(metrics["per_class"]["RBC"]["recall"], 4),
            "rbc_count_median_rel_error": red["count_medre"], "wbc_count_mae": metrics["count_error"]["WBC"]["count_mae"],
            "scale": metrics["scale"]}


MODES = {   # how the images reach the counter: the auto scale starts from the last images' scale, or from nothing
    "folder": ("A folder (one counter, file-name order: each image's first guess is the last images' scale, or its "
               "thumbnail's where the frame size changes and that reads over 15% from theirs; BCCD val is one "
               "microscope, TXL-PBC val interleaves four)", True),
    "alone": ("Each image alone (a fresh counter per image, as `bcedge count` one image: the first guess is read "
              "from its thumbnail)", False),
}


def markdown(report: dict) -> str:
    lines = header("Counts on other magnifications (no option given)", report["machine"],
                   f"Model `{report['model']}`. Each validation split resampled by the factor (area averaging down, "
                   "cubic up), then evaluated as `bcedge eval` runs it (automatic scale, tiles, merge). Red-cell "
                   "count error: median per image, at the model's operating thresholds. Passes: counting passes per "
                   "image, the scale estimate's included.")
    for mode, (title, _) in MODES.items():
        if not any(mode in rows[f] for rows in report["splits"].values() for f in rows):
            continue
        lines += ["", f"### {title}", "",
                  "| data | factor | mAP50 | RBC recall | RBC count err. | WBC count MAE | scale: estimated / fallback | "
                  "passes | median factor |", "|---|---:|---:|---:|---:|---:|---|---:|---:|"]
        for name, rows in report["splits"].items():
            for factor, by_mode in rows.items():
                if mode not in by_mode:
                    continue
                r = by_mode[mode]
                methods = r["scale"]["methods"]
                lines.append(f"| {name} | {factor} | {r['mAP50']:.3f} | {100 * r['recall_RBC']:.1f}% | "
                             f"{100 * r['rbc_count_median_rel_error']:.1f}% | {r['wbc_count_mae']:.3f} | "
                             f"{methods.get('auto', 0)} / {methods.get('fallback', 0)} | "
                             f"{r['scale'].get('passes_mean', 0):.2f} | {r['scale']['factor_median']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--txl", type=Path, default=ROOT.parent / "shared/data/txl-pbc")
    parser.add_argument("--bccd", type=Path, default=ROOT.parent / "shared/data/bccd")
    parser.add_argument("--factors", type=float, nargs="+", default=[0.3, 0.5, 1.0, 2.0, 3.5, 5.0])
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    args = parser.parse_args(argv)
    model = resolve_model(args.model)
    splits = {"TXL-PBC val": load_sources([SourceSpec(args.txl, "val", group_by="size")], CLASSES),
              "BCCD val": load_sources([SourceSpec(args.bccd, "val")], CLASSES)}
    machine = describe_machine()
    report = {"model": args.model, "machine": machine, "splits": {}}
    with tempfile.TemporaryDirectory(prefix="bcedge-magnification-") as work:
        for name, data in splits.items():
            report["splits"][name] = {}
            for factor in args.factors:
                log(f"{name} x{factor} ...")
                scaled = data if factor == 1.0 else rescaled(data, factor, Path(work) / f"{name}_{factor}")
                report["splits"][name][f"x{factor:g}"] = {
                    mode: row(evaluate_runtime(model, scaled, device="cpu", remember_scale=MODES[mode][1])[0])
                    for mode in args.modes}
    write_results(f"magnification_{machine_slug(machine)}", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
