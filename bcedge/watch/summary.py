"""summary.csv and summary.json, rebuilt from one snapshot of the state database.

Each ``done`` row holds exactly the counts written in its result file (the row is marked done
only after that file is in place), so the summary agrees with the per-image results; both files
come from the same snapshot, so they agree with each other.
"""
from __future__ import annotations

import csv
import io
import time
from typing import Any

from bcedge.atomic import atomic_write_json, atomic_write_text
from bcedge.watch.outputs import OutputLayout
from bcedge.watch.quarantine import iso_time
from bcedge.watch.state import StateDB


def build_summary(state: StateDB, layout: OutputLayout, model: dict[str, Any]) -> dict[str, Any]:
    """The summary as a dict: totals, per-class counts, one entry per image, quarantined files."""
    done, bad = [], []
    classes: list[str] = list(model.get("class_names", []))
    for row in state.rows("done", "quarantined"):
        if row.status == "done":
            for name in row.counts or {}:
                if name not in classes:
                    classes.append(name)
            done.append({"path": row.path, "counts": row.counts or {}, "total": row.total,
                         "width": row.width, "height": row.height, "sha256": row.sha256,
                         "result": layout.result(row.path).relative_to(layout.out_dir).as_posix()})
        else:
            bad.append({"path": row.path, "error": row.error, "message": row.message})
    totals = {name: sum(img["counts"].get(name, 0) for img in done) for name in classes}
    return {
        "generated_at": iso_time(time.time()),
        "model": model,
        "images": len(done),
        "quarantined": len(bad),
        "counts": totals,
        "total": sum(img["total"] or 0 for img in done),
        "classes": classes,
        "per_image": done,
        "quarantined_files": bad,
    }


def summary_csv(summary: dict[str, Any]) -> str:
    """One row per image: path, status, total, one column per class, size; quarantined rows carry the error."""
    classes = summary["classes"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "status", "total", *classes, "width", "height", "error"])
    for img in summary["per_image"]:
        writer.writerow([img["path"], "done", img["total"], *(img["counts"].get(c, 0) for c in classes),
                         img["width"], img["height"], ""])
    for bad in summary["quarantined_files"]:
        writer.writerow([bad["path"], "quarantined", "", *("" for _ in classes), "", "", bad["error"]])
    return buf.getvalue()


def write_summary(state: StateDB, layout: OutputLayout, model: dict[str, Any], durable: bool = True) -> dict[str, Any]:
    summary = build_summary(state, layout, model)
    atomic_write_json(layout.summary_json, summary, durable)
    atomic_write_text(layout.summary_csv, summary_csv(summary), durable)
    return summary
