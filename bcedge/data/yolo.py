"""YOLO (Ultralytics / Roboflow): a ``data.yaml`` naming the classes and the image folder of each split.

    data.yaml                 names: [WBC, RBC, Platelets]  (or {0: WBC, 1: RBC, ...}), nc: 3
    images/train/*.jpg        train: images/train, val: images/val, optional path: (the base folder)
    labels/train/*.txt        one "class x_center y_center width height" line per box, normalised 0..1

The path is the ``data.yaml`` itself or the folder holding it. A split's labels sit where the image
folder's last ``images`` component becomes ``labels`` (the Ultralytics rule), so Roboflow's
``train/images`` + ``train/labels`` reads too; without an ``images`` component they sit beside the
images. A split is a folder, a ``.txt`` list of images, or a list of those; ``../x`` that does not exist
is tried as ``x`` (Roboflow's data.yaml). Segmentation lines (class then polygon points) become their
bounding boxes.

Classes keep data.yaml's id order. Boxes are scaled to pixels with each image's header size; an edge
past 0 or 1 by at most ``ROUNDING`` (rounding in the export) is clipped first. A line
that cannot be a box (wrong field count, not a number, class id not in ``names``) is refused with a
DatasetError naming every such file and line; boxes that are out of the image, empty or repeated are
left for ``bcedge.data.validate`` (box N of a label file is its N-th box line, counted from 0).
An image without a label file holds no cells (counted in ``Dataset.notes``); a label file without an
image is kept with its boxes, so validation reports it as a missing image.
"""
from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path

import numpy as np

from bcedge.atomic import atomic_write_text
from bcedge.data.annotations import Dataset, ImageAnnotation
from bcedge.data.formats import DatasetError, every_problem, json_head
from bcedge.data.imagesize import image_size
from bcedge.data.yaml_subset import read_top_level
from bcedge.imageio import IMAGE_SUFFIXES, ImageReadError

CONFIG_NAMES = ("data.yaml", "data.yml")
SPLIT_KEYS = ("train", "val", "test")
FIELDS = "class x_center y_center width height"
_SUFFIXES = frozenset(IMAGE_SUFFIXES)
ROUNDING = 1e-4  # normalised overshoot past 0 or 1 taken as rounding (6-decimal exports) and clipped silently


# --- sniffing ------------------------------------------------------------------------------------

def _sniff(path: Path) -> bool:
    if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
        return False
    head = json_head(path)
    return bool(re.search(r"^(names|nc)\s*:", head, re.MULTILINE) and re.search(r"^(train|val)\s*:", head, re.MULTILINE))


def _configs(folder: Path) -> list[Path]:
    return sorted(p for p in list(folder.glob("*.yaml")) + list(folder.glob("*.yml")) if _sniff(p))


def can_read(path: Path) -> bool:
    path = Path(path)
    return _sniff(path) if path.is_file() else path.is_dir() and bool(_configs(path))


def _config_file(path: Path) -> Path:
    if path.is_file():
        if not _sniff(path):
            raise DatasetError(f"{path}: not a YOLO data.yaml (needs 'names:' and 'train:' or 'val:' keys)")
        return path
    found = _configs(path)
    if not found:
        raise DatasetError(f"{path}: no YOLO data.yaml (with 'names:' and 'train:'/'val:') found")
    preferred = [p for p in found if p.name in CONFIG_NAMES]
    if len(preferred) == 1 or len(found) == 1:
        return (preferred or found)[0]
    raise DatasetError(f"{path}: holds several YOLO configs ({', '.join(p.name for p in found)}); pass the one to read")


# --- data.yaml -----------------------------------------------------------------------------------

def parse_config(path: Path) -> dict:
    """The data.yaml keys a detector needs: path, nc, names and the splits (others are skipped unread)."""
    return read_top_level(path, ("path", "nc", "names") + SPLIT_KEYS)


def class_names(config: dict, path: Path) -> dict[int, str]:
    """Class id -> name from ``names`` (list or {id: name}), or ``class_<i>`` for ``nc`` alone."""
    names, count = config.get("names"), config.get("nc")
    if isinstance(names, list):
        names = dict(enumerate(names))
    if isinstance(names, dict):
        if not all(isinstance(k, int) and k >= 0 for k in names):
            raise DatasetError(f"{path}: names keys must be class ids 0, 1, ...; got {', '.join(map(str, names))}")
        names = {k: str(v) for k, v in sorted(names.items())}
    elif isinstance(count, int) and count > 0:
        names = {i: f"class_{i}" for i in range(count)}
    else:
        raise DatasetError(f"{path}: 'names' must be a list or an {{id: name}} mapping (got {names!r})")
    if isinstance(count, int) and count != len(names):
        raise DatasetError(f"{path}: nc is {count} but names lists {len(names)} classes")
    repeated = sorted({n for n in names.values() if list(names.values()).count(n) > 1})
    if repeated:
        raise DatasetError(f"{path}: class name(s) {', '.join(repeated)} appear more than once in names")
    return names


# --- reading -------------------------------------------------------------------------------------

def read(path: Path, split: str | None = None) -> Dataset:
    config_path = _config_file(Path(path))
    config = parse_config(config_path)
    names = class_names(config, config_path)
    base, notes = _base(config, config_path)
    splits = {k: config[k] for k in SPLIT_KEYS if config.get(k)}
    if not splits:
        raise DatasetError(f"{config_path}: no split (train:, val: or test:) names an image folder")
    chosen = _choose(splits, split, config_path)
    notes.insert(0, f"YOLO classes in data.yaml id order: {', '.join(names.values())}")
    images: list[Path] = []
    folders: list[Path] = []
    for key in chosen:
        found = _split_images(splits[key], base, config_path, key, required=split is not None)
        if found is None:
            notes.append(f"split {key!r} skipped: {splits[key]} not found under {base}")
            continue
        notes.append(f"split {key!r}: {len(found[0])} images from {splits[key]}")
        images += found[0]
        folders += found[1]
    if not folders and not images:
        raise DatasetError(f"{config_path}: none of the split folders ({', '.join(map(str, splits.values()))}) exist under {base}")
    unique = list(dict.fromkeys(images))
    if len(unique) < len(images):
        notes.append(f"{len(images) - len(unique)} images listed by more than one split read once")
    records, problems, unlabelled = _records(unique, names)
    orphans = _orphans(list(dict.fromkeys(folders)), {Path(r.source) for r in records}, names, problems)
    records += orphans
    every_problem(config_path, f"label line(s) are not '{FIELDS}' boxes", problems)
    if unlabelled:
        notes.append(f"{unlabelled} images without a label file (read as holding no cells)")
    if orphans:
        notes.append(f"{len(orphans)} label files without an image (validation reports them as missing_image)")
    return Dataset(records, list(names.values()), root=base, format="yolo", notes=notes)


def _base(config: dict, config_path: Path) -> tuple[Path, list[str]]:
    folder = config_path.parent
    given = config.get("path")
    if not given:
        return folder, []
    base = Path(str(given))
    base = base if base.is_absolute() else folder / base
    if base.is_dir():
        return base, []
    return folder, [f"data.yaml path {given} does not exist here; splits resolved against {folder}"]


def _choose(splits: dict, split: str | None, config_path: Path) -> list[str]:
    if split is None:
        return list(splits)
    for rule in (lambda k: k == split, lambda k: k.startswith(split) or split.startswith(k)):
        chosen = [k for k in splits if rule(k)]
        if len(chosen) == 1:
            return chosen
    raise DatasetError(f"{config_path}: no split {split!r}; splits here: {', '.join(splits)}")


def _split_images(value, base: Path, config_path: Path, key: str, required: bool) -> tuple[list[Path], list[Path]] | None:
    """(image files, image folders) of one split: a folder, a .txt list, or a list of those.

    None when a folder is absent and the split was not asked for by name.
    """
    images, folders = [], []
    for entry in value if isinstance(value, list) else [value]:
        location = _resolve(base, str(entry))
        if location.is_dir():
            images += _images_in(location)
            folders.append(location)
        elif location.is_file() and location.suffix.lower() == ".txt":
            images += _listed_images(location)
        elif required:
            raise DatasetError(f"{config_path}: {key}: {entry} is not a folder or .txt image list (looked for {location})")
        else:
            return None
    return images, folders


def _resolve(base: Path, entry: str) -> Path:
    location = Path(entry) if Path(entry).is_absolute() else base / entry
    if not location.exists() and entry.startswith("../"):  # Roboflow writes ../train/images beside data.yaml
        location = base / entry[3:]
    return location


def _images_in(folder: Path) -> list[Path]:
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs.sort()
        found += [Path(parent) / f for f in sorted(files) if os.path.splitext(f)[1].lower() in _SUFFIXES]
    return found


def _listed_images(list_path: Path) -> list[Path]:
    lines = [line.strip() for line in list_path.read_text(encoding="utf-8").splitlines()]
    return [Path(line) if Path(line).is_absolute() else list_path.parent / line for line in lines if line]


def label_path(image_path: Path) -> Path:
    """The label file of an image: its last ``images`` folder becomes ``labels``, suffix ``.txt``."""
    parts = list(image_path.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image_path.with_suffix(".txt")


def _records(images: list[Path], names: dict[int, str]) -> tuple[list[ImageAnnotation], list[str], int]:
    """(one record per image, malformed-line problems, images without a label file)."""
    records, problems, unlabelled = [], [], 0
    for image in images:
        labels_file = label_path(image)
        if labels_file.is_file():
            boxes, labels = _parse_labels(labels_file, names, problems)
            source = str(labels_file)
        else:
            boxes, labels, source = np.zeros((0, 4)), [], f"{image} (no label file)"
            unlabelled += 1
        width, height = _size(image)
        if width and height:
            boxes = boxes * np.array([width, height, width, height], dtype=np.float64)
        records.append(ImageAnnotation(image, width, height, boxes, labels, source=source))
    return records, problems, unlabelled


def _orphans(folders: list[Path], claimed: set[Path], names: dict[int, str], problems: list[str]) -> list[ImageAnnotation]:
    """Records for label files under the splits' label folders that no image claims (image missing)."""
    records = []
    for folder in folders:
        label_folder = label_path(folder / "x.jpg").parent
        if not label_folder.is_dir():
            continue
        for labels_file in sorted(label_folder.rglob("*.txt")):
            if labels_file in claimed or labels_file.name == "classes.txt":
                continue
            claimed.add(labels_file)
            image = (folder / labels_file.relative_to(label_folder)).with_suffix(".*")
            boxes, labels = _parse_labels(labels_file, names, problems)
            records.append(ImageAnnotation(image, 0, 0, boxes, labels, source=f"{labels_file} (no image)"))
    return records


def _parse_labels(path: Path, names: dict[int, str], problems: list[str]) -> tuple[np.ndarray, list[str]]:
    """Normalised xyxy boxes and class names of one label file; malformed lines go to ``problems``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})")
        return np.zeros((0, 4)), []
    boxes, labels = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}, line {number}"
        if len(fields) != 5 and (len(fields) < 7 or len(fields) % 2 == 0):
            problems.append(f"{where}: {len(fields)} fields, expected 5 ({FIELDS}) or a class and polygon points")
            continue
        try:
            values = [float(v) for v in fields]
        except ValueError:
            bad = next(v for v in fields if not _is_number(v))
            problems.append(f"{where}: {bad!r} is not a number")
            continue
        class_id = values[0]
        if not math.isfinite(class_id) or class_id != int(class_id):
            problems.append(f"{where}: class id {fields[0]!r} is not a whole number")
            continue
        if int(class_id) not in names:
            problems.append(f"{where}: class id {int(class_id)} is not in names (ids {_id_range(names)})")
            continue
        boxes.append(_box(values[1:]))
        labels.append(names[int(class_id)])
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    rounded = (array < 0) & (array >= -ROUNDING) | (array > 1) & (array <= 1 + ROUNDING)
    return np.where(rounded, np.clip(array, 0, 1), array), labels


def _box(values: list[float]) -> list[float]:
    if len(values) == 4:
        x, y, w, h = values
        return [x - w / 2, y - h / 2, x + w / 2, y + h / 2]
    xs, ys = values[0::2], values[1::2]  # polygon points: their bounding box
    return [min(xs), min(ys), max(xs), max(ys)]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _id_range(names: dict[int, str]) -> str:
    ids = list(names)
    return f"0..{ids[-1]}" if ids == list(range(len(ids))) else ", ".join(map(str, ids))


def _size(image: Path) -> tuple[int, int]:
    try:
        return image_size(image)
    except ImageReadError:
        return 0, 0  # validation reports the missing or unreadable image


# --- writing -------------------------------------------------------------------------------------

def write_yolo(dataset: Dataset, out_path: str | Path, split: str | None = None) -> Path:
    """Write ``dataset`` as one YOLO split: ``images/<split>/`` (copies of the images),
    ``labels/<split>/*.txt`` and ``data.yaml``; returns the data.yaml path.

    ``out_path`` is the folder (or its data.yaml). Run it once per split into the same folder: an
    existing data.yaml gains the split if its names match. Refuses, naming the file, a split folder
    that already holds labels, an image that is missing or shares a name, and a label outside
    ``dataset.class_names`` (validate first).
    """
    out_path = Path(out_path)
    config_path = out_path if out_path.suffix.lower() in (".yaml", ".yml") else out_path / "data.yaml"
    folder, split = config_path.parent, split or "train"
    config = parse_config(config_path) if config_path.is_file() else {}
    if config and class_names(config, config_path) != dict(enumerate(dataset.class_names)):
        raise DatasetError(f"{config_path}: names differ from this dataset's classes ({', '.join(dataset.class_names)})")
    images, labels = folder / "images" / split, folder / "labels" / split
    for used in (images, labels):
        if used.is_dir() and any(used.iterdir()):
            raise DatasetError(f"{used}: not empty; write split {split!r} into a new folder or another split")
    ids = {name: i for i, name in enumerate(dataset.class_names)}
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for record in dataset.images:
        where = record.source or str(record.image_path)
        if record.name in written:
            raise DatasetError(f"{record.image_path}: same file name as {written[record.name]}; YOLO needs unique names per split")
        if not record.image_path.is_file() or record.width <= 0 or record.height <= 0:
            raise DatasetError(f"{where}: image {record.image_path} is missing or has no size; validate with policy drop first")
        written[record.name] = record.image_path
        lines = []
        for index, (box, label) in enumerate(zip(record.boxes.tolist(), record.labels)):
            if label not in ids:
                raise DatasetError(f"{where}: box {index} has label {label!r} not in the class list")
            x0, y0, x1, y1 = box
            w, h = record.width, record.height
            lines.append(f"{ids[label]} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}\n")
        shutil.copy2(record.image_path, images / record.name)  # a copy: editing it cannot touch the source
        (labels / record.image_path.with_suffix(".txt").name).write_text("".join(lines))
    splits = {key: config[key] for key in SPLIT_KEYS if config.get(key)} | {split: f"images/{split}"}
    text = [f"# written by bcedge from {dataset.format or 'a dataset'} at {dataset.root or ''}".rstrip(), "path: ."]
    text += [f"{key}: {value}" for key, value in splits.items()]
    text += [f"nc: {len(ids)}", "names: [" + ", ".join(_quoted(name) for name in ids) + "]"]
    atomic_write_text(config_path, "\n".join(text) + "\n", durable=False)  # readers never see half a file
    return config_path


def _quoted(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"
