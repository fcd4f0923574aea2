"""The auto scale estimate: what it costs, how close it gets, and that it leaves images at the model's scale alone.

    python benchmarks/scale_estimate.py [--model default] [--txl ../shared/data/txl-pbc] [--bccd ../shared/data/bccd]

Per source group of BCCD val and TXL-PBC val:
- cost: the time of first passes that were thrown away (the guess was off) over the time of the counting
  passes that were kept, for a fresh ``Counter`` per image (no prior: the worst case) and for one
  ``Counter`` per group (a rig's stream or folder, where the last image's scale is the next one's guess);
- accuracy: the estimated red-cell diameter against the median of the image's labelled whole red cells;
- invariance: BCCD val resampled so its red cells are at the model's working scale, counted with the
  auto estimate and with ``--cell-size`` at that scale: the largest per-image count change.
Writes benchmarks/results/scale_estimate_<machine>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bcedge.bench.machine import describe_machine, machine_line, machine_slug  # noqa: E402
from bcedge.catalogue import resolve_model  # noqa: E402
from bcedge.data.cellsize import image_cell_sizes  # noqa: E402
from bcedge.data.multisource import SourceSpec, load_sources  # noqa: E402
from bcedge.runtime.counter import Counter  # noqa: E402
from bcedge.runtime.scale import model_cell_px  # noqa: E402

CLASSES = ["RBC", "WBC", "Platelets"]


def run_group(model: Path, records, sizes) -> dict:
    fresh_waste = fresh_kept = stream_waste = stream_kept = 0.0
    errors, passes = [], []
    stream = Counter.load(model, device="cpu")
    for record, truth in zip(records, sizes):
        result = Counter.load(model, device="cpu").count_file(record.image_path)
        waste = result.timings.get("estimate_s", 0.0)
        fresh_waste, fresh_kept = fresh_waste + waste, fresh_kept + result.timings["total_s"] - waste
        passes.append(result.scale.passes)
        if result.scale.cell_px and np.isfinite(truth):
            errors.append(abs(result.scale.cell_px / truth - 1))
        streamed = stream.count_file(record.image_path)
        waste = streamed.timings.get("estimate_s", 0.0)
        stream_waste, stream_kept = stream_waste + waste, stream_kept + streamed.timings["total_s"] - waste
    return {"images": len(records), "estimate_share_fresh": round(fresh_waste / max(fresh_kept, 1e-9), 3),
            "estimate_share_stream": round(stream_waste / max(stream_kept, 1e-9), 3),
            "second_pass_share_fresh": round(float(np.mean([p > 1 for p in passes])), 3),
            "cell_px_error_median": round(float(np.median(errors)), 3) if errors else None,
            "cell_px_error_p90": round(float(np.percentile(errors, 90)), 3) if errors else None}


def invariance(model: Path, data, sizes, work: Path) -> dict:
    """Counts at the model's own scale: auto estimate against the exact scale given."""
    counter_auto = Counter.load(model, device="cpu")
    target = model_cell_px(counter_auto.meta)
    counter_exact = Counter.load(model, device="cpu", cell_size=target)
    changes, unscaled = [], 0
    for record, cell in zip(data.images, sizes):
        image = cv2.imread(str(record.image_path))
        factor = target / cell
        resized = cv2.resize(image, (round(record.width * factor), round(record.height * factor)), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
        auto, exact = counter_auto.count(rgb), counter_exact.count(rgb)
        unscaled += auto.scale.factor == 1.0
        for name in CLASSES:
            changes.append(abs(auto.counts[name] - exact.counts[name]) / max(exact.counts[name], 1))
    return {"images": len(data), "counted_unresampled": int(unscaled), "max_count_change": round(float(max(changes)), 4),
            "mean_count_change": round(float(np.mean(changes)), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--txl", type=Path, default=ROOT.parent / "shared/data/txl-pbc")
    parser.add_argument("--bccd", type=Path, default=ROOT.parent / "shared/data/bccd")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    model = resolve_model(args.model)
    data = load_sources([SourceSpec(args.bccd, "val", group_by="size"), SourceSpec(args.txl, "val", group_by="size")], CLASSES)
    sizes = image_cell_sizes(data)
    groups = {}
    for group in sorted({r.group for r in data.images}):
        index = [i for i, r in enumerate(data.images) if r.group == group]
        groups[group] = run_group(model, [data.images[i] for i in index], sizes[index])
        print(group, groups[group], flush=True)
    bccd = [i for i, r in enumerate(data.images) if r.group.startswith(args.bccd.resolve().name)]
    with tempfile.TemporaryDirectory() as work:
        same = invariance(model, data.subset(bccd), sizes[bccd], Path(work))
    print("at the model's scale:", same, flush=True)
    machine = describe_machine()
    report = {"model": str(model), "groups": groups, "at_model_scale": same, "machine": machine}
    slug = machine_slug(machine)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"scale_estimate_{slug}.json").write_text(json.dumps(report, indent=1, default=str))
    rows = "\n".join(f"| {g} | {v['images']} | {v['estimate_share_fresh'] * 100:.0f}% | {v['estimate_share_stream'] * 100:.0f}% | "
                     f"{v['second_pass_share_fresh'] * 100:.0f}% | {(v['cell_px_error_median'] or 0) * 100:.1f}% | "
                     f"{(v['cell_px_error_p90'] or 0) * 100:.1f}% |" for g, v in groups.items())
    (args.out / f"scale_estimate_{slug}.md").write_text(f"""# Auto scale estimate ({machine_line(machine)})

Model `{model.name}`. Cost: time of discarded first passes over time of kept counting passes (target < 15%).

| group | images | cost, fresh counter per image | cost, one counter per group (a rig) | second pass, fresh | cell size error, median | p90 |
|---|---:|---:|---:|---:|---:|---:|
{rows}

At the model's own scale (BCCD val resampled to {model_cell_px(Counter.load(model, device='cpu').meta)} px red cells), auto
against the exact scale: {same['counted_unresampled']} of {same['images']} images counted without resampling; largest per-image,
per-class count change {same['max_count_change'] * 100:.1f}% (mean {same['mean_count_change'] * 100:.2f}%; target <= 1%).
""")
    print(f"wrote {args.out / f'scale_estimate_{slug}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
