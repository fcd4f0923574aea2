"""A counts table for the terminal, and a counts CSV."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence


def counts_rows(results: Sequence[dict], class_names: Sequence[str]) -> list[list]:
    """One row per image (name, per-class counts, total), then a TOTAL row."""
    rows = [[Path(r["image"]["path"]).name, *(r["counts"][c] for c in class_names), r["total"]] for r in results]
    totals = [sum(r["counts"][c] for r in results) for c in class_names]
    rows.append(["TOTAL", *totals, sum(totals)])
    return rows


def counts_table(results: Sequence[dict], class_names: Sequence[str]) -> str:
    header = ["image", *class_names, "total"]
    rows = [header] + [[str(v) for v in row] for row in counts_rows(results, class_names)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def counts_csv(results: Sequence[dict], class_names: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["image", *class_names, "total"])
    writer.writerows(counts_rows(results, class_names)[:-1])
    return buffer.getvalue()
