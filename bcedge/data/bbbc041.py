"""BBBC041 (malaria) JSON: a list of ``{"image": {"pathname", "shape"}, "objects": [...]}``.

Points are (r, c) = (row, column) = (y, x), so ``minimum``/``maximum`` become x0=c, y0=r, x1=c, y1=r
and ``shape`` gives height=r, width=c. A ``pathname`` such as ``/images/abc.png`` is relative to the
JSON's folder. Classes follow the rule in ``bcedge.data.formats`` counted over every BBBC041 JSON
in that folder (training.json and test.json together).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from bcedge.data.annotations import Dataset, ImageAnnotation
from bcedge.data.formats import DatasetError, any_file, json_head, load_json, order_classes, split_files

_PATTERNS = ("*.json",)


def _sniff(path: Path) -> bool:
    if path.suffix.lower() != ".json":
        return False
    head = json_head(path)
    return head.startswith("[") and ('"objects"' in head or '"pathname"' in head or head.rstrip() == "[]")


def can_read(path: Path) -> bool:
    return any_file(Path(path), _PATTERNS, _sniff)


def read(path: Path, split: str | None = None) -> Dataset:
    json_path, family = split_files(Path(path), split, _sniff, _PATTERNS)
    records = _parse(json_path)
    counts = Counter(label for r in records for label in r.labels)
    for other in family:
        if other != json_path:
            counts.update(label for r in _parse(other) for label in r.labels)
    class_names = order_classes(counts)
    notes = [f"BBBC041 classes ordered by box count over {', '.join(p.name for p in family)}: {', '.join(class_names)}"]
    return Dataset(records, class_names, root=json_path.parent, format="bbbc041", notes=notes)


def _parse(json_path: Path) -> list[ImageAnnotation]:
    entries = load_json(json_path)
    if not isinstance(entries, list):
        raise DatasetError(f"{json_path}: not BBBC041 JSON (expected a top-level list of images)")
    return [_entry(entry, json_path, index) for index, entry in enumerate(entries)]


def _entry(entry, json_path: Path, index: int) -> ImageAnnotation:
    where = f"{json_path}: entry {index}"
    image = _get(entry, ("image",), where)
    pathname = str(_get(image, ("pathname",), where))
    where = f"{json_path}: entry {index} ({pathname})"
    shape = _get(image, ("shape",), where)
    height, width = int(_num(shape, "r", f"{where}: image.shape")), int(_num(shape, "c", f"{where}: image.shape"))
    boxes, labels = [], []
    for number, obj in enumerate(_get(entry, ("objects",), where) or []):
        at = f"{where}: object {number}"
        box = _get(obj, ("bounding_box",), at)
        low, high = _get(box, ("minimum",), at), _get(box, ("maximum",), at)
        boxes.append([_num(low, "c", at), _num(low, "r", at), _num(high, "c", at), _num(high, "r", at)])
        labels.append(str(_get(obj, ("category",), at)).strip())
    image_path = json_path.parent / pathname.lstrip("/\\")
    return ImageAnnotation(image_path, width, height, boxes, labels, source=f"{json_path} (entry {index})")


def _get(obj, keys: tuple[str, ...], where: str):
    for depth, key in enumerate(keys):
        if not isinstance(obj, dict) or key not in obj:
            raise DatasetError(f"{where}: missing '{'.'.join(keys[: depth + 1])}'")
        obj = obj[key]
    return obj


def _num(point, key: str, where: str) -> float:
    value = _get(point, (key,), where)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: '{key}' is {value!r}, not a number") from None
