"""Evaluation metrics as a text table, like ``yolo val``: per class, then per source group."""
from __future__ import annotations


def _row(cells: list, widths: list[int]) -> str:
    return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def _figure(value: float | None, spec: str = ".3f", scale: float = 1.0, unit: str = "") -> str:
    """A metric as text; "n/a" where it is undefined (a class without labels in the data has no AP)."""
    return "n/a" if value is None else f"{value * scale:{spec}}{unit}"


def metrics_table(metrics: dict) -> str:
    head = ["class", "labels", "AP50", "AP", "P", "R", "count MAE", "median rel. err"]
    widths = [12, 7, 6, 6, 6, 6, 10, 16]
    lines = [_row(head, widths)]
    counts = metrics["count_error"]
    lines.append(_row(["all", sum(c["truth"] for c in counts.values()), _figure(metrics["mAP50"]),
                       _figure(metrics["mAP"]), "", "", "", ""], widths))
    for name, entry in metrics["per_class"].items():
        error = counts[name]
        lines.append(_row([name, error["truth"], _figure(entry["AP50"]), _figure(entry["AP"]),
                           _figure(entry.get("precision", 0)), _figure(entry.get("recall", 0)),
                           _figure(error["count_mae"], ".2f"), _figure(error.get("count_medre", 0), ".1f", 100, "%")],
                          widths))
    groups = metrics.get("groups") or {}
    if groups:
        names = list(metrics["per_class"])
        head = ["group", "images", "mAP50", "mAP"] + [f"{n} med. err" for n in names]
        widths = [max(12, *(len(g) for g in groups)), 7, 6, 6] + [max(10, len(n) + 10) for n in names]
        lines += ["", _row(head, widths)]
        for group, entry in groups.items():
            lines.append(_row([group, entry["images"], _figure(entry["mAP50"]), _figure(entry["mAP"])] +
                              [_figure(entry["count_error"][n].get("count_medre", 0), ".1f", 100, "%") for n in names],
                              widths))
    white = metrics.get("one_box_per_white_cell")
    if white:
        lines += ["", f"white cells with more than one box: {white['with_more_than_one_box']} of {white['white_cells']}"]
    scale = metrics.get("scale")
    if scale:
        lines += ["", f"scale: {scale['methods']}, median factor {scale['factor_median']}, "
                      f"second pass on {scale['second_pass_share'] * 100:.0f}% of images"]
    return "\n".join(lines)
