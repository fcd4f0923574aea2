"""summary.csv and summary.json: the counts report (``bcedge.report.counts``, the schema ``bcedge count``
writes too), rebuilt from one snapshot of the state database.

Each ``done`` row holds exactly the counts written in its result file (the row is marked done
only after that file is in place), so the summary agrees with the per-image results; both files
come from the same snapshot, so they agree with each other. Quarantined files are its ``failed``.
"""
from __future__ import annotations

from typing import Any

from bcedge.atomic import atomic_write_json, atomic_write_text
from bcedge.report.counts import build_report, failed_entry, image_entry, report_csv
from bcedge.watch.outputs import OutputLayout
from bcedge.watch.state import StateDB


def build_summary(state: StateDB, layout: OutputLayout, model: dict[str, Any]) -> dict[str, Any]:
    """The report: totals, one entry per counted image (with its result file), the quarantined files."""
    images, failed = [], []
    for row in state.rows("done", "quarantined"):
        if row.status == "done":
            result = layout.result(row.path).relative_to(layout.out_dir).as_posix()
            extra = {key: value for key, value in (("scale", row.scale), ("tile", row.tile)) if value}
            images.append(image_entry(row.path, row.counts or {}, (row.width, row.height), row.tiles, row.flags or (),
                                      sha256=row.sha256, result=result, **extra))
        else:
            failed.append(failed_entry(row.path, row.error or "", row.message or "", status="quarantined"))
    return build_report(images, failed, model)


def write_summary(state: StateDB, layout: OutputLayout, model: dict[str, Any], durable: bool = True) -> dict[str, Any]:
    summary = build_summary(state, layout, model)
    atomic_write_json(layout.summary_json, summary, durable)
    atomic_write_text(layout.summary_csv, report_csv(summary), durable)
    return summary
