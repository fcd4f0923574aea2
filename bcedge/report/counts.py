"""The counts report: one schema for ``bcedge count`` and the watch service, as JSON, CSV and a table.

JSON (``SCHEMA``)::

    {"schema": "bcedge-counts/1", "generated_at": "2026-01-31T12:00:00.000+00:00",
     "model": {"name": "default", "arch": ..., "class_names": [...], "input_size": [640, 480], ...},
     "classes": ["RBC", "WBC", "Platelets"],
     "totals": {"RBC": 212, "WBC": 3, "Platelets": 17}, "total": 232,
     "images": [{"path": "scans/a.png", "status": "done", "width": 4000, "height": 3000, "tiles": 48,
                 "counts": {...}, "total": 116, "flags": ["greyscale"], ...}],
     "failed": [{"path": "scans/b.png", "status": "skipped", "error": "TruncatedImage", "message": "..."}]}

An image entry may carry more: ``detections`` (COCO style) and ``timings`` from ``bcedge count``,
``sha256`` and ``result`` (its result file) from the watch service, ``overlay``. ``flags`` name what
makes a count less trustworthy (``greyscale``: the model was trained on colour).

CSV: one row per image, then one per failed input:
``path, status, <one column per class>, total, width, height, flags, error, scale, cell_px``
(``flags`` separated by "; "; ``scale``: model pixels per image pixel; ``cell_px``: the red-cell diameter it rests
on). What each flag means: ``bcedge.runtime.frames.FLAG_NOTES``, also under the terminal table.
Paths are shown escaped (``bcedge.report.names``).
"""
from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from bcedge.report.names import escape_name, escape_text

SCHEMA = "bcedge-counts/1"


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def model_info(meta: Any, name: str = "", backend: str | None = None) -> dict[str, Any]:
    """What identifies the model in every report: name, architecture, classes, input size, precision,
    versions (those ``meta`` has), and the backend that ran it."""
    info: dict[str, Any] = {"name": name} if name else {}
    for attr in ("arch", "class_names", "input_size", "precision", "versions"):
        value = getattr(meta, attr, None)
        if value is not None:
            info[attr] = list(value) if isinstance(value, tuple) else value
    if backend:
        info["backend"] = backend
    return info


def image_entry(path: str, counts: dict[str, int], size: tuple[int, int], tiles: int | None = None,
                flags: Sequence[str] = (), **extra: Any) -> dict[str, Any]:
    """The report entry of one counted image (``path`` already escaped); ``extra`` adds caller fields
    (``detections``, ``timings``, ``sha256``, ``result``, ``overlay``)."""
    counts = {str(k): int(v) for k, v in counts.items()}
    return {"path": path, "status": "done", "width": int(size[0]), "height": int(size[1]),
            "tiles": None if tiles is None else int(tiles), "counts": counts, "total": sum(counts.values()),
            "flags": list(flags), **extra}


def result_entry(path: str, result: Any, detections: bool = False, image_id: int = 1, **extra: Any) -> dict[str, Any]:
    """``image_entry`` of a ``CountResult``; ``detections`` adds its COCO-style boxes (as ``image_id``)
    and timings."""
    if detections:
        extra["detections"] = result.detections.to_coco(image_id, list(result.class_names))
        extra["timings"] = {k: round(float(v), 4) for k, v in (getattr(result, "timings", None) or {}).items()}
    scale = getattr(result, "scale", None)
    if scale is not None:
        extra.setdefault("scale", scale.to_dict())
    if getattr(result, "tile", None):
        extra.setdefault("tile", f"{result.tile[0]}x{result.tile[1]}")
    return image_entry(path, result.counts, result.image_size, getattr(result, "tiles", None),
                       getattr(result, "flags", None) or (), **extra)


def scale_note(result: Any) -> list[str]:
    """The overlay legend's line on how the image was brought to the model's scale (none if unscaled)."""
    scale = getattr(result, "scale", None)
    if scale is None or scale.method == "model":
        return []
    how = {"auto": f"auto, {scale.cells} cells", "fallback": "too few cells to measure"}.get(scale.method, scale.method)
    cell = f", cell {scale.cell_px:.0f}px" if scale.cell_px else ""
    return [f"scale x{scale.factor:.2f} ({how}{cell})"]


def legend_notes(result: Any) -> list[str]:
    """The overlay legend's lines under the counts: the scale (``scale_note``) and the flags (``noisy``: smoothed)."""
    flags = list(getattr(result, "flags", None) or ())
    return scale_note(result) + ([f"flags: {', '.join(flags)}"] if flags else [])


def failed_entry(path: str, error: str, message: str, status: str = "skipped", **extra: Any) -> dict[str, Any]:
    """An input that was not counted: its name, why (the error's class and message), and ``status``
    (``skipped`` by ``bcedge count``, ``quarantined`` by the watch service)."""
    return {"path": path, "status": status, "error": error, "message": escape_text(message), **extra}


def error_entry(path: Any, exc: BaseException, status: str = "skipped") -> dict[str, Any]:
    """``failed_entry`` of the error ``path`` raised; its message names the file (prefixed where it did not)."""
    message = str(exc)
    if str(path) not in message:
        message = f"{path}: {message}"
    return failed_entry(escape_name(path), type(exc).__name__, message, status)


def build_report(images: Sequence[dict], failed: Sequence[dict], model: dict[str, Any],
                 classes: Iterable[str] = ()) -> dict[str, Any]:
    """The whole report; per-class totals are summed from ``images``, classes in model order first."""
    names = list(classes) or list(model.get("class_names", []))
    for image in images:
        names.extend(n for n in image["counts"] if n not in names)
    totals = {name: sum(image["counts"].get(name, 0) for image in images) for name in names}
    return {"schema": SCHEMA, "generated_at": iso_time(time.time()), "model": model, "classes": names,
            "totals": totals, "total": sum(image["total"] for image in images),
            "images": list(images), "failed": list(failed)}


def report_csv(report: dict[str, Any]) -> str:
    """The report as CSV text (see the module docstring for the columns)."""
    classes = report["classes"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "status", *classes, "total", "width", "height", "flags", "error", "scale", "cell_px"])
    for image in report["images"]:
        scale = image.get("scale") or {}
        writer.writerow([image["path"], image["status"], *(image["counts"].get(c, 0) for c in classes),
                         image["total"], image["width"], image["height"], "; ".join(image.get("flags", [])), "",
                         scale.get("factor", ""), scale.get("cell_px") or ""])
    for bad in report["failed"]:
        writer.writerow([bad["path"], bad["status"], *("" for _ in classes), "", "", "", "", bad["error"], "", ""])
    return buffer.getvalue()


def report_table(report: dict[str, Any]) -> str:
    """Per-image counts and a TOTAL row, aligned for a terminal; flagged images are marked ``*``."""
    classes = report["classes"]
    header = ["image", *classes, "total"]
    rows = [[image["path"] + (" *" if image.get("flags") else ""), *(image["counts"].get(c, 0) for c in classes),
             image["total"]] for image in report["images"]]
    rows.append(["TOTAL", *(report["totals"][c] for c in classes), report["total"]])
    text = [header] + [[str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in text) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths)))
             for row in text]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    flagged = sorted({flag for image in report["images"] for flag in image.get("flags", [])})
    if flagged:
        from bcedge.runtime.frames import FLAG_NOTES

        lines.append(f"* flagged: {', '.join(flagged)} (see the JSON or CSV)")
        lines += [f"  {flag}: {FLAG_NOTES[flag]}" for flag in flagged if flag in FLAG_NOTES]
    return "\n".join(lines)
