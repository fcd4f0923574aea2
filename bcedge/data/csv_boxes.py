"""CSV box lists: one row per box, with a header naming image, xmin, ymin, xmax, ymax and label.

Common aliases are accepted (filename/path for image, x1/left for xmin, class/category for label,
any case). Image paths are relative to the CSV's folder; a row with empty coordinates lists an
image without boxes. Sizes come from the image headers.

Pixels or normalised: when every coordinate lies within [0, 1] and every readable image is larger
than 1 px, the boxes are taken as normalised and scaled by each image's width and height; the
decision is recorded in ``Dataset.notes``. Classes follow the rule in ``bcedge.data.formats``,
counted over every box CSV in the same folder.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np

from bcedge.data.annotations import Dataset, ImageAnnotation
from bcedge.data.formats import DatasetError, any_file, every_problem, order_classes, split_files
from bcedge.data.imagesize import image_size
from bcedge.imageio import ImageReadError

_PATTERNS = ("*.csv",)
ALIASES: dict[str, tuple[str, ...]] = {
    "image": ("image", "filename", "file_name", "file", "image_path", "path", "img", "image_name"),
    "xmin": ("xmin", "x_min", "x1", "left"),
    "ymin": ("ymin", "y_min", "y1", "top"),
    "xmax": ("xmax", "x_max", "x2", "right"),
    "ymax": ("ymax", "y_max", "y2", "bottom"),
    "label": ("label", "class", "class_name", "category", "name", "cell_type", "type"),
}
_COORDS = ("xmin", "ymin", "xmax", "ymax")


def _columns(header: list[str]) -> dict[str, str]:
    """Map each canonical column to the header's spelling of it (absent ones left out)."""
    found = {}
    lowered = {h.strip().lower(): h for h in header if h}
    for column, aliases in ALIASES.items():
        for alias in aliases:
            if alias in lowered:
                found[column] = lowered[alias]
                break
    return found


def _open(path: Path):
    handle = open(path, "r", encoding="utf-8-sig", newline="")
    sample = handle.read(4096)
    handle.seek(0)
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return handle, csv.DictReader(handle, dialect=dialect)


def _sniff(path: Path) -> bool:
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    try:
        handle, rows = _open(path)
        with handle:
            return {"image", *_COORDS} <= set(_columns(rows.fieldnames or []))
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


def can_read(path: Path) -> bool:
    return any_file(Path(path), _PATTERNS, _sniff)


def read(path: Path, split: str | None = None) -> Dataset:
    csv_path, family = split_files(Path(path), split, _sniff, _PATTERNS)
    rows = _rows(csv_path)
    counts = Counter(label for _, _, label in rows if label)
    for other in family:
        if other != csv_path:
            counts.update(label for _, _, label in _rows(other) if label)
    class_names = order_classes(counts)

    images: dict[str, tuple[list, list]] = {}
    for name, box, label in rows:
        boxes, labels = images.setdefault(name, ([], []))
        if box is not None:
            boxes.append(box)
            labels.append(label)
    sizes = {name: _size(csv_path.parent / name) for name in images}
    normalised, note = _units(rows, sizes)
    records = []
    for name, (boxes, labels) in images.items():
        width, height = sizes[name]
        array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if normalised and width and height:
            array = array * np.array([width, height, width, height], dtype=np.float64)
        records.append(ImageAnnotation(csv_path.parent / name, width, height, array, labels, source=f"{csv_path} ({name})"))
    notes = [note, f"CSV classes ordered by box count over {', '.join(p.name for p in family)}: {', '.join(class_names)}"]
    return Dataset(records, class_names, root=csv_path.parent, format="csv", notes=notes)


def _rows(csv_path: Path) -> list[tuple[str, list[float] | None, str]]:
    """(image name, [x0, y0, x1, y1] or None for an image without boxes, label) for each data row."""
    try:
        handle, reader = _open(csv_path)
    except OSError as exc:
        raise DatasetError(f"{csv_path}: cannot open ({exc.strerror})") from None
    with handle:
        columns = _columns(reader.fieldnames or [])
        missing = [c for c in ALIASES if c not in columns]
        if missing:
            raise DatasetError(
                f"{csv_path}: header lacks column(s) {', '.join(missing)} (found: {', '.join(reader.fieldnames or [])}); "
                f"expected image, xmin, ymin, xmax, ymax, label"
            )
        rows, problems = [], []
        try:
            for row in reader:
                try:
                    rows.append(_row(row, columns, csv_path, reader.line_num))
                except DatasetError as problem:
                    problems.append(str(problem))
        except csv.Error as exc:
            raise DatasetError(f"{csv_path}, line {reader.line_num}: malformed CSV ({exc})") from None
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{csv_path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    every_problem(csv_path, "row(s) cannot be read", problems)
    return rows


def _row(row: dict, columns: dict[str, str], csv_path: Path, line: int) -> tuple[str, list[float] | None, str]:
    name = (row.get(columns["image"]) or "").strip()
    if not name:
        raise DatasetError(f"{csv_path}, line {line}: empty image name")
    values = [(row.get(columns[c]) or "").strip() for c in _COORDS]
    if not any(values):
        return name, None, ""
    box = [_number(v, c, csv_path, line) for v, c in zip(values, _COORDS)]
    return name, box, (row.get(columns["label"]) or "").strip()


def _number(text: str, column: str, csv_path: Path, line: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise DatasetError(f"{csv_path}, line {line}: {column} {text!r} is not a number") from None


def _size(image_path: Path) -> tuple[int, int]:
    try:
        return image_size(image_path)
    except ImageReadError:
        return 0, 0  # validation reports the missing or unreadable image


def _units(rows: list, sizes: dict[str, tuple[int, int]]) -> tuple[bool, str]:
    coords = np.array([box for _, box, _ in rows if box is not None], dtype=np.float64).reshape(-1)
    if coords.size == 0:
        return False, "CSV has no boxes"
    known = [s for s in sizes.values() if s[0] and s[1]]
    within = bool(np.all((coords >= 0) & (coords <= 1)))
    if within and known and all(w > 1 and h > 1 for w, h in known):
        return True, (f"CSV boxes are normalised to 0..1 (all {coords.size} coordinates within [0, 1]); "
                      "scaled by each image's width and height")
    return False, f"CSV boxes are in pixels (coordinates from {np.nanmin(coords):g} to {np.nanmax(coords):g})"
