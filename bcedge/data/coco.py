"""COCO detection JSON: reading, and writing the exchange format of the whole project.

Reading keeps category-id order for the classes, turns ``bbox`` (x, y, w, h) into ``xyxy`` and
resolves ``file_name`` against the JSON's folder. ``iscrowd`` regions are skipped (they are not
objects to detect) and said so in ``Dataset.notes``; segmentations are kept as ``masks``.
"""
from __future__ import annotations

import json
from pathlib import Path

from bcedge.atomic import atomic_write_text
from bcedge.data.annotations import Dataset, ImageAnnotation
from bcedge.data.formats import DatasetError, any_file, json_head, load_json, split_files
from bcedge.data.imagesize import image_size
from bcedge.imageio import ImageReadError

_PATTERNS = ("*.json",)


def _sniff(path: Path) -> bool:
    if path.suffix.lower() != ".json":
        return False
    head = json_head(path)
    return head.startswith("{") and any(f'"{key}"' in head for key in ("images", "annotations", "categories"))


def can_read(path: Path) -> bool:
    return any_file(Path(path), _PATTERNS, _sniff)


def read(path: Path, split: str | None = None) -> Dataset:
    json_path, _ = split_files(Path(path), split, _sniff, _PATTERNS)
    data = load_json(json_path)
    if not isinstance(data, dict) or "images" not in data:
        raise DatasetError(f"{json_path}: not COCO JSON (no top-level 'images' list)")
    categories = sorted(_entries(data, "categories", json_path), key=lambda c: _field(c, "id", json_path, "category"))
    names = {c["id"]: str(_field(c, "name", json_path, "category")) for c in categories}
    images: dict = {}  # image id -> [path, width, height, source, boxes, labels, masks]
    for index, image in enumerate(_entries(data, "images", json_path)):
        where = f"images[{index}]"
        image_id = _field(image, "id", json_path, where)
        if image_id in images:
            raise DatasetError(f"{json_path}: {where}: image id {image_id} appears twice")
        image_path = _resolve(json_path.parent, str(_field(image, "file_name", json_path, where)))
        width, height = int(image.get("width") or 0), int(image.get("height") or 0)
        if width <= 0 or height <= 0:
            try:
                width, height = image_size(image_path)
            except ImageReadError:
                width, height = 0, 0  # validation reports the missing image
        images[image_id] = [image_path, width, height, f"{json_path} (image id {image_id})", [], [], []]
    crowd = 0
    for index, ann in enumerate(_entries(data, "annotations", json_path)):
        where = f"annotations[{index}] (id {ann.get('id')})"
        if ann.get("iscrowd"):
            crowd += 1
            continue
        image_id, category_id = _field(ann, "image_id", json_path, where), _field(ann, "category_id", json_path, where)
        if image_id not in images:
            raise DatasetError(f"{json_path}: {where}: image_id {image_id} is not in 'images'")
        if category_id not in names:
            raise DatasetError(f"{json_path}: {where}: category_id {category_id} is not in 'categories'")
        bbox = _field(ann, "bbox", json_path, where)
        try:
            x, y, w, h = (float(v) for v in bbox)
        except (TypeError, ValueError):
            raise DatasetError(f"{json_path}: {where}: bbox {bbox!r} is not four numbers x, y, w, h") from None
        images[image_id][4].append([x, y, x + w, y + h])
        images[image_id][5].append(names[category_id])
        images[image_id][6].append(ann.get("segmentation"))
    records = [
        ImageAnnotation(path, w, h, boxes, labels, source=source, masks=masks if any(masks) else None)
        for path, w, h, source, boxes, labels, masks in images.values()
    ]
    notes = [f"COCO classes in category-id order: {', '.join(names.values())}"]
    if crowd:
        notes.append(f"{crowd} iscrowd annotations skipped")
    return Dataset(records, list(names.values()), root=json_path.parent, format="coco", notes=notes)


def write_coco(dataset: Dataset, out_path: str | Path) -> Path:
    """Write ``dataset`` as COCO JSON: category ids 1..C in class order, image ids 1..N.

    ``file_name`` is relative to the output folder when the image lies inside it, else absolute.
    Raises DatasetError for a label outside ``dataset.class_names`` (validate first).
    """
    out_path = Path(out_path)
    out_dir = out_path.parent.resolve()
    category_ids = {name: i + 1 for i, name in enumerate(dataset.class_names)}
    images, annotations = [], []
    for image_id, record in enumerate(dataset.images, start=1):
        image_file = record.image_path.resolve()
        file_name = image_file.relative_to(out_dir).as_posix() if image_file.is_relative_to(out_dir) else str(image_file)
        images.append({"id": image_id, "file_name": file_name, "width": int(record.width), "height": int(record.height)})
        for index, (box, label) in enumerate(zip(record.boxes.tolist(), record.labels)):
            if label not in category_ids:
                raise DatasetError(f"{record.source or record.image_path}: box {index} has label {label!r} not in the class list")
            x0, y0, x1, y1 = box
            ann = {"id": len(annotations) + 1, "image_id": image_id, "category_id": category_ids[label],
                   "bbox": [x0, y0, x1 - x0, y1 - y0], "area": max(x1 - x0, 0.0) * max(y1 - y0, 0.0), "iscrowd": 0}
            if record.masks and record.masks[index]:
                ann["segmentation"] = record.masks[index]
            annotations.append(ann)
    categories = [{"id": i, "name": name, "supercategory": "cell"} for name, i in category_ids.items()]
    info = {"description": f"written by bcedge from {dataset.format or 'a dataset'} at {dataset.root or ''}".strip(),
            "notes": list(dataset.notes)}
    doc = {"info": info, "images": images, "annotations": annotations, "categories": categories}
    atomic_write_text(out_path, json.dumps(doc), durable=False)  # readers never see half a file
    return out_path


def _entries(data: dict, key: str, path: Path) -> list[dict]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DatasetError(f"{path}: '{key}' must be a list of objects")
    return entries


def _field(entry: dict, key: str, path: Path, where: str):
    if key not in entry:
        raise DatasetError(f"{path}: {where}: missing '{key}'")
    return entry[key]


def _resolve(folder: Path, file_name: str) -> Path:
    candidate = Path(file_name)
    return candidate if candidate.is_absolute() else folder / candidate
