"""What a dataset holds: images, boxes per class, box sizes, objects per image, imbalance, problems.

Box counts are as annotated (before validation drops anything), so they match the dataset's own
numbers; ``valid`` says how many survive ``validate(policy="drop")``. Sizes are measured over boxes
with positive width and height: side = sqrt(area), with median, p10 and p90.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from bcedge.data.annotations import Dataset
from bcedge.data.validate import ValidationReport, validate


def dataset_stats(dataset: Dataset, report: ValidationReport | None = None, check_images: bool = True) -> dict:
    """A JSON-able description of ``dataset``; runs ``validate(policy="keep")`` unless given a report."""
    if report is None:
        report = validate(dataset, policy="keep", check_images=check_images)
    labels = [label for record in dataset.images for label in record.labels]
    boxes = np.concatenate([record.boxes for record in dataset.images]) if dataset.images else np.zeros((0, 4), np.float32)
    label_array = np.array(labels, dtype=object)
    counts = Counter(labels)
    errors = {(p.file, p.index) for p in report.problems if p.severity == "error" and p.kind != "inconsistent_label"}
    dropped = Counter()  # boxes that validate(policy="drop") removes, whole dropped images included
    for record in dataset.images:
        where = record.source or str(record.image_path)
        for index, label in enumerate(record.labels):
            if (where, index) in errors or (where, None) in errors:
                dropped[label] += 1
    per_class = {}
    for name in list(dataset.class_names) + sorted(set(counts) - set(dataset.class_names)):
        picked = boxes[label_array == name] if len(boxes) else boxes
        width, height = picked[:, 2] - picked[:, 0], picked[:, 3] - picked[:, 1]
        good = (width > 0) & (height > 0)
        per_class[name] = {
            "boxes": counts.get(name, 0),
            "valid": counts.get(name, 0) - dropped.get(name, 0),
            "images": sum(1 for record in dataset.images if name in record.labels),
            "size": _spread(np.sqrt(width[good] * height[good])),
            "width": _spread(width[good]),
            "height": _spread(height[good]),
        }
    per_image = np.array([len(record.boxes) for record in dataset.images])
    present = {name: c["boxes"] for name, c in per_class.items() if c["boxes"]}
    most, least = (max(present, key=present.get), min(present, key=present.get)) if present else (None, None)
    return {
        "root": str(dataset.root or ""),
        "format": dataset.format,
        "notes": list(dataset.notes),
        "images": len(dataset.images),
        "classes": list(dataset.class_names),
        "boxes": len(labels),
        "per_class": per_class,
        "objects_per_image": {
            "mean": round(float(per_image.mean()), 2) if len(per_image) else 0.0,
            "min": int(per_image.min()) if len(per_image) else 0,
            "max": int(per_image.max()) if len(per_image) else 0,
            "no_boxes": int((per_image == 0).sum()),
        },
        "image_sizes": dict(Counter(f"{r.width}x{r.height}" for r in dataset.images).most_common()),
        "imbalance": {"ratio": round(present[most] / present[least], 2) if present else None, "most": most, "least": least},
        "problems": report.to_dict(),
    }


def format_stats(stats: dict, limit: int | None = 20) -> str:
    """Human-readable text for ``dataset_stats`` output; lists up to ``limit`` problems."""
    lines = [f"{stats['root'] or 'dataset'} ({stats['format']}): {stats['images']} images, "
             f"{stats['boxes']} boxes, {len(stats['classes'])} classes"]
    lines += [f"  note: {note}" for note in stats["notes"]]
    lines.append("")
    lines.append(f"{'class':<16}{'boxes':>7}{'valid':>7}{'images':>8}   {'size px median [p10-p90]':<26}{'width':<20}height")
    for name, c in stats["per_class"].items():
        lines.append(f"{name:<16}{c['boxes']:>7}{c['valid']:>7}{c['images']:>8}   "
                     f"{_range(c['size']):<26}{_range(c['width']):<20}{_range(c['height'])}")
    lines.append("(boxes: as annotated; valid: kept by validate(policy='drop'); size: sqrt(area))")
    per = stats["objects_per_image"]
    lines.append("")
    lines.append(f"objects per image: mean {per['mean']}, min {per['min']}, max {per['max']}"
                 + (f" ({per['no_boxes']} images without boxes)" if per["no_boxes"] else ""))
    lines.append("image sizes: " + ", ".join(f"{size} ({n})" for size, n in stats["image_sizes"].items()))
    imbalance = stats["imbalance"]
    if imbalance["ratio"] is not None:
        most, least = imbalance["most"], imbalance["least"]
        lines.append(f"class imbalance: {imbalance['ratio']} ({most} {stats['per_class'][most]['boxes']} / "
                     f"{least} {stats['per_class'][least]['boxes']})")
    problems = stats["problems"]
    lines.append("")
    if not problems["count"]:
        lines.append("problems: none")
    else:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(problems["by_kind"].items()))
        lines.append(f"problems: {problems['count']} ({kinds})")
        shown = problems["problems"][:limit]
        for p in shown:
            where = p["file"] if p["index"] is None else f"{p['file']}: box {p['index']}"
            lines.append(f"  {where}: {p['kind']}: {p['detail']}")
        if len(shown) < problems["count"]:
            lines.append(f"  ... and {problems['count'] - len(shown)} more (see --json)")
    return "\n".join(lines)


def _spread(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {"median": None, "p10": None, "p90": None}
    p10, median, p90 = np.percentile(values.astype(np.float64), [10, 50, 90])
    return {"median": round(float(median), 1), "p10": round(float(p10), 1), "p90": round(float(p90), 1)}


def _range(spread: dict) -> str:
    if spread["median"] is None:
        return "-"
    return f"{spread['median']:g} [{spread['p10']:g}-{spread['p90']:g}]"
