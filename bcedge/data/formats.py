"""Choosing a dataset reader by what a path holds, and the helpers all readers share.

A reader is a module with ``can_read(path) -> bool`` (a cheap sniff) and
``read(path, split=None) -> Dataset``. ``READERS`` maps a format name to its module: a new format
is a new module plus one line here. ``WRITERS`` does the same for output formats.

Class order rule (all readers without their own id order): most boxes first, ties by name, counted
over every annotation file of the dataset (all splits), so that train and val of one dataset get
the same class ids. COCO keeps its category-id order.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable

from bcedge.data.annotations import Dataset
from bcedge.registry import Registry, load_target


class DatasetError(ValueError):
    """A dataset cannot be read or fails validation; the message names the file and the problem."""


SHOWN_PROBLEMS = 20   # unreadable entries listed in one error


def every_problem(where: str | Path, what: str, problems: list[str]) -> None:
    """Raise one ``DatasetError`` listing ``problems`` (the first ``SHOWN_PROBLEMS``), if there are any: a reader
    reads on after a bad entry, so that a user fixes them all at once rather than one per run."""
    if problems:
        shown = [f"  {p}" for p in problems[:SHOWN_PROBLEMS]]
        more = [f"  ... and {len(problems) - SHOWN_PROBLEMS} more"] if len(problems) > SHOWN_PROBLEMS else []
        raise DatasetError(f"{where}: {len(problems)} {what}\n" + "\n".join(shown + more))


READERS: Registry[str] = Registry("dataset format", DatasetError)   # name -> reader module
READERS.add("voc", "bcedge.data.voc")
READERS.add("coco", "bcedge.data.coco")
READERS.add("bbbc041", "bcedge.data.bbbc041")
READERS.add("csv", "bcedge.data.csv_boxes")
READERS.add("yolo", "bcedge.data.yolo")
WRITERS: Registry[str] = Registry("output format", DatasetError)    # name -> "module:write function"
WRITERS.add("coco", "bcedge.data.coco:write_coco")
WRITERS.add("yolo", "bcedge.data.yolo:write_yolo")


def reader(name: str):
    """The reader module registered as ``name``."""
    return load_target(READERS.lookup(name))


def writer(name: str) -> Callable:
    """The writer function ``write(dataset, out_path)`` registered as ``name``."""
    return load_target(WRITERS.lookup(name))


def detect_format(path: str | Path) -> str:
    """Name the one registered reader that recognises ``path``; raise if none or several do."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    matches = [name for name in READERS if reader(name).can_read(path)]
    if not matches:
        raise DatasetError(
            f"{path}: not a recognised dataset (expected a Pascal VOC folder with Annotations/*.xml, "
            "a COCO or BBBC041 JSON file, a CSV box list, or a YOLO data.yaml or its folder)"
        )
    if len(matches) > 1:
        raise DatasetError(f"{path}: could be read as {' or '.join(matches)}; name the format (fmt= / --format)")
    return matches[0]


def load_dataset(path: str | Path, split: str | None = None, fmt: str | None = None) -> Dataset:
    """Read the dataset at ``path`` (format sniffed unless ``fmt`` names it), optionally one ``split``.

    Boxes come back as they are annotated; run ``bcedge.data.validate`` before training.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    name = fmt.lower() if fmt else detect_format(path)
    dataset = reader(name).read(path, split=split)
    dataset.format = dataset.format or name
    return dataset


def order_classes(counts: Counter) -> list[str]:
    """Class names by box count descending, then by name: the stable order documented above."""
    return sorted((label for label in counts if label), key=lambda label: (-counts[label], label))


def json_head(path: Path, size: int = 65536) -> str:
    """The first ``size`` characters of a text file, without leading whitespace ('' if unreadable)."""
    try:
        with open(path, "r", encoding="utf-8-sig", errors="replace") as handle:
            return handle.read(size).lstrip()
    except OSError:
        return ""


def load_json(path: Path):
    """Parse a JSON file; a syntax error names the file, line and column."""
    try:
        with open(path, "r", encoding="utf-8-sig") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None


def split_files(path: Path, split: str | None, sniff: Callable[[Path], bool], patterns: Iterable[str]) -> tuple[Path, list[Path]]:
    """Resolve (file to read, every annotation file of this format beside it) for file-per-split formats.

    ``path`` is a file, or a folder (also searched in its ``annotations/`` subfolder) whose files
    matching ``patterns`` and ``sniff`` are the splits; ``split`` picks one by stem: exact,
    ``instances_<split>``, or the one stem starting with it ("train" finds "training.json").
    """
    if path.is_file():
        if split:
            raise DatasetError(f"{path}: split {split!r} asked for, but the path is one annotation file; pass its folder")
        family = [path] + [p for p in _candidates(path.parent, patterns, sniff) if p.resolve() != path.resolve()]
        return path, family
    family = _candidates(path, patterns, sniff) + _candidates(path / "annotations", patterns, sniff)
    if not family:
        raise DatasetError(f"{path}: no annotation file ({', '.join(patterns)}) found")
    if split is None:
        if len(family) > 1:
            names = ", ".join(p.name for p in family)
            raise DatasetError(f"{path}: holds several annotation files ({names}); pick one with split= / --split")
        return family[0], family
    for rule in (lambda s: s == split, lambda s: s == f"instances_{split}", lambda s: s.startswith(split)):
        chosen = [p for p in family if rule(p.stem)]
        if len(chosen) == 1:
            return chosen[0], family
    raise DatasetError(f"{path}: no single annotation file for split {split!r} among {', '.join(p.name for p in family)}")


def any_file(path: Path, patterns: Iterable[str], sniff: Callable[[Path], bool]) -> bool:
    """True if ``path`` is such a file, or a folder (or its ``annotations/``) holding one: a reader's ``can_read``."""
    if path.is_file():
        return sniff(path)
    return bool(_candidates(path, patterns, sniff) or _candidates(path / "annotations", patterns, sniff))


def _candidates(folder: Path, patterns: Iterable[str], sniff: Callable[[Path], bool]) -> list[Path]:
    if not folder.is_dir():
        return []
    found = {p for pattern in patterns for p in folder.glob(pattern) if p.is_file()}
    return sorted(p for p in found if sniff(p))
