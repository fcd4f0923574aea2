"""Pascal VOC: a folder with ``Annotations/*.xml``, ``JPEGImages/`` and ``ImageSets/Main/<split>.txt``.

Width and height come from ``<size>`` (the image header when absent or zero). Boxes are kept as
written, pixel ``xyxy`` floats, without VOC's historical 1-based shift. Classes follow the rule in
``bcedge.data.formats`` counted over every XML in ``Annotations/`` whatever the split, which gives
RBC, WBC, Platelets for BCCD.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from bcedge.data.annotations import Dataset, ImageAnnotation
from bcedge.data.formats import DatasetError, every_problem, order_classes
from bcedge.data.imagesize import image_size
from bcedge.imageio import IMAGE_SUFFIXES, ImageReadError

_BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")


def can_read(path: Path) -> bool:
    folder = Path(path) / "Annotations"
    return Path(path).is_dir() and folder.is_dir() and any(folder.glob("*.xml"))


def read(path: Path, split: str | None = None) -> Dataset:
    root = Path(path)
    if not can_read(root):
        raise DatasetError(f"{root}: not a Pascal VOC folder (no Annotations/*.xml)")
    records, problems = [], []
    for xml_path in sorted((root / "Annotations").glob("*.xml")):
        try:
            records.append(_parse(xml_path, root))
        except DatasetError as problem:
            problems.append(str(problem))
    every_problem(root / "Annotations", "annotation file(s) cannot be read", problems)
    class_names = order_classes(Counter(label for record in records for label in record.labels))
    notes = [f"VOC classes ordered by box count over all {len(records)} annotation files: {', '.join(class_names)}"]
    if split:
        ids = _split_ids(root, split)
        by_stem = {Path(r.source).stem: r for r in records}
        missing = [i for i in ids if i not in by_stem]
        if missing:
            raise DatasetError(
                f"{root / 'ImageSets' / 'Main' / (split + '.txt')}: {len(missing)} ids without an annotation file "
                f"in Annotations/, e.g. {', '.join(missing[:3])}"
            )
        records = [by_stem[i] for i in ids]
        notes.append(f"split {split!r}: {len(records)} images listed in ImageSets/Main/{split}.txt")
    return Dataset(records, class_names, root=root, format="voc", notes=notes)


def _split_ids(root: Path, split: str) -> list[str]:
    main = root / "ImageSets" / "Main"
    split_file = main / f"{split}.txt"
    if not split_file.is_file():
        known = sorted(p.stem for p in main.glob("*.txt") if "_" not in p.stem) if main.is_dir() else []
        raise DatasetError(f"{split_file}: no such split file; splits here: {', '.join(known) or 'none'}")
    ids = []
    for line in split_file.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields and fields[0] not in ids:
            ids.append(fields[0])
    return ids


def _parse(xml_path: Path, root: Path) -> ImageAnnotation:
    try:
        tree = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        line, column = exc.position
        raise DatasetError(f"{xml_path}: malformed XML at line {line}, column {column}: {exc}") from None
    except OSError as exc:
        raise DatasetError(f"{xml_path}: cannot read ({exc.strerror or exc})") from None
    if tree.tag != "annotation":
        raise DatasetError(f"{xml_path}: root element is <{tree.tag}>, expected <annotation>")
    image_path = _image_path(root, xml_path, (tree.findtext("filename") or "").strip())
    width, height = _size(tree, xml_path, image_path)
    boxes, labels = [], []
    for index, obj in enumerate(tree.findall("object")):
        label = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        where = f"{xml_path}: object {index} ({label or 'no name'})"
        if box is None:
            raise DatasetError(f"{where}: no <bndbox>")
        boxes.append([_number(box.findtext(tag), f"{where}: <{tag}>") for tag in _BOX_TAGS])
        labels.append(label)
    return ImageAnnotation(image_path, width, height, boxes, labels, source=str(xml_path))


def _image_path(root: Path, xml_path: Path, filename: str) -> Path:
    images = root / "JPEGImages"
    if filename and (images / filename).is_file():
        return images / filename
    for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
        candidate = images / (xml_path.stem + suffix)
        if candidate.is_file():
            return candidate
    return images / (filename or xml_path.stem + ".jpg")  # missing: validation reports it


def _size(tree: ET.Element, xml_path: Path, image_path: Path) -> tuple[int, int]:
    size = tree.find("size")
    if size is not None and size.findtext("width") and size.findtext("height"):
        width = int(_number(size.findtext("width"), f"{xml_path}: <size><width>"))
        height = int(_number(size.findtext("height"), f"{xml_path}: <size><height>"))
        if width > 0 and height > 0:
            return width, height
    try:
        return image_size(image_path)
    except ImageReadError:
        return 0, 0  # unknown: validation reports the missing or unreadable image


def _number(text: str | None, where: str) -> float:
    if text is None or not text.strip():
        raise DatasetError(f"{where} is missing")
    try:
        return float(text)
    except ValueError:
        raise DatasetError(f"{where} is {text.strip()!r}, not a number") from None
