"""Which working scale should the default model count at? Sweep the red-cell size the runtime brings images to.

    python benchmarks/working_scale.py --model bcedge/assets/models/default.onnx --cell-px 48 56 60 64 68 72

For each size, the model file is copied with only ``pixel_scale.cell_px`` changed (what
``export/build_default_model.py --cell-px`` ships). Both val splits are then counted through the runtime
(``bcedge eval``'s ``evaluate_runtime``, automatic scale, the model's own thresholds). The sweep writes JSON and
a table to ``benchmarks/results/working_scale_<machine>.md``. The thresholds stay the shipped ones, so the count
errors compare scales, not tuned operating points.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "export"))

from bcedge.artifact import read_meta, write_meta  # noqa: E402
from bcedge.bench.machine import describe_machine, machine_line, machine_slug  # noqa: E402
from bcedge.evaluate.runtime_eval import evaluate_runtime  # noqa: E402
from build_default_model import val_sets  # noqa: E402


def at_scale(model: Path, cell_px: float, folder: Path) -> Path:
    """A copy of ``model`` that counts at ``cell_px``."""
    meta = read_meta(model)
    meta.pixel_scale = {**meta.pixel_scale, "cell_px": float(cell_px)}
    out = folder / f"cell{cell_px:g}.onnx"
    write_meta(model, meta, out)
    return out


def row(metrics: dict) -> dict:
    rbc = metrics["count_error"]["RBC"]
    return {"mAP50": metrics["mAP50"], "mAP": metrics["mAP"], "rbc_recall": metrics["per_class"]["RBC"]["recall"],
            "rbc_count_medre": rbc["count_medre"], "rbc_count_mae": rbc["count_mae"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "bcedge/assets/models/default.onnx")
    parser.add_argument("--cell-px", type=float, nargs="+", default=[48, 56, 60, 64, 68, 72])
    parser.add_argument("--txl", type=Path, default=ROOT.parent / "shared/data/txl-pbc")
    parser.add_argument("--bccd", type=Path, default=ROOT.parent / "shared/data/bccd")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    sets = val_sets(args.txl, args.bccd)
    machine = describe_machine()
    meta = read_meta(args.model)
    if not (meta.pixel_scale or {}).get("cell_px"):
        raise SystemExit(f"{args.model}: no working scale (pixel_scale.cell_px) in its metadata; this sweep is for "
                         "scale-aware models such as the bundled default")
    results = {"model": str(args.model.relative_to(ROOT)) if args.model.is_relative_to(ROOT) else str(args.model),
               "shipped_cell_px": meta.pixel_scale["cell_px"], "thresholds": meta.score_thresholds,
               "machine": machine, "rows": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for cell_px in args.cell_px:
            copy = at_scale(args.model, cell_px, Path(tmp))
            results["rows"][f"{cell_px:g}"] = {name: row(evaluate_runtime(copy, data, device="cpu")[0])
                                               for name, data in sets.items()}
            print(cell_px, json.dumps(results["rows"][f"{cell_px:g}"]), flush=True)
    stem = args.out / f"working_scale_{machine_slug(machine)}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    lines = [f"# Working scale of `{results['model']}`: red-cell size the runtime counts at", "",
             f"Machine: {machine_line(machine)}. Both val splits through the counting runtime (automatic scale), "
             f"thresholds as shipped {json.dumps(results['thresholds'])}; only `pixel_scale.cell_px` differs "
             f"(shipped: {results['shipped_cell_px']:g} px). Count error: median per-image relative red-cell count error; the "
             f"thresholds were tuned at the shipped scale, which favours it in count error (mAP does not depend on them).", "",
             "| cell px | TXL-PBC mAP50 | TXL-PBC mAP | TXL-PBC RBC recall | TXL-PBC RBC count err. | BCCD mAP50 | BCCD mAP |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for px, r in results["rows"].items():
        t, b = r["txl_pbc_val"], r["bccd_val"]
        lines.append(f"| {px} | {t['mAP50']:.4f} | {t['mAP']:.4f} | {t['rbc_recall']:.4f} | {t['rbc_count_medre']:.1%} | "
                     f"{b['mAP50']:.4f} | {b['mAP']:.4f} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.md/.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
