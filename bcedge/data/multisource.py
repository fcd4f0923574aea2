"""Several datasets as one: classes mapped by name, every image tagged with the source group it came from.

    data = load_sources([SourceSpec("../shared/data/txl-pbc", "train", group_by="size"),
                         SourceSpec("../shared/data/bccd", "train")], classes=["RBC", "WBC", "Platelets"])

A *group* is what sampling balances over and what evaluation reports per source: the dataset's
name, or with ``group_by="size"`` the dataset's name and an image-size group (TXL-PBC's four
microscopes differ in frame size), or with ``group_by="folder"`` the image's parent folder.
Sources can also be listed in a small YAML file (``read_sources_file``)::

    classes: [RBC, WBC, Platelets]
    sources:
      - {path: ../shared/data/txl-pbc, split: train, group_by: size}
      - {path: ../shared/data/bccd, split: train}
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bcedge.data.annotations import Dataset, ImageAnnotation
from bcedge.data.class_names import class_for, match_classes
from bcedge.data.formats import DatasetError, load_dataset

SIZE_TOLERANCE = 0.05   # frame sizes within 5% on both sides are one size group (360x363 and 366x369)


@dataclass(frozen=True)
class SourceSpec:
    path: Path
    split: str | None = None
    group_by: str = "dataset"       # "dataset", "size" or "folder"
    name: str | None = None         # defaults to the dataset folder's name

    @property
    def label(self) -> str:
        return self.name or Path(self.path).resolve().name


def size_groups(records: list[ImageAnnotation]) -> dict[tuple[int, int], str]:
    """Frame size -> group name, merging sizes within ``SIZE_TOLERANCE`` into the most common one."""
    counts: dict[tuple[int, int], int] = {}
    for record in records:
        counts[(record.width, record.height)] = counts.get((record.width, record.height), 0) + 1
    names: dict[tuple[int, int], str] = {}
    for size in sorted(counts, key=lambda s: (-counts[s], s)):
        home = next((h for h in names if names[h] == f"{h[0]}x{h[1]}" and
                     all(abs(a - b) <= SIZE_TOLERANCE * b for a, b in zip(size, h))), None)
        names[size] = names[home] if home else f"{size[0]}x{size[1]}"
    return names


Grouper = Callable[[ImageAnnotation], str]


def by_dataset(spec: SourceSpec, records: list[ImageAnnotation]) -> Grouper:
    return lambda record: spec.label


def by_size(spec: SourceSpec, records: list[ImageAnnotation]) -> Grouper:
    names = size_groups(records)
    return lambda record: f"{spec.label}/{names[(record.width, record.height)]}"


def by_folder(spec: SourceSpec, records: list[ImageAnnotation]) -> Grouper:
    return lambda record: f"{spec.label}/{record.image_path.parent.name}"


GROUPERS: dict[str, Callable[[SourceSpec, list[ImageAnnotation]], Grouper]] = {
    "dataset": by_dataset, "size": by_size, "folder": by_folder}


def map_classes(data: Dataset, classes: list[str], source: str) -> None:
    """Rename ``data``'s labels to the spelling in ``classes`` (the same name in any case, or a common name for the
    same cell: ``bcedge.data.class_names``); a class that ``classes`` lacks is an error naming the source."""
    try:
        matched = match_classes(sorted({label for record in data.images for label in record.labels}
                                       | set(data.class_names)), classes)
    except ValueError as error:
        raise DatasetError(f"{source}: {error}") from None
    for record in data.images:
        record.labels = [matched[label] for label in record.labels]


def load_sources(specs: list[SourceSpec], classes: list[str] | None = None,
                 loader: Callable[[Path, str | None], Dataset] | None = None) -> Dataset:
    """One ``Dataset`` over all ``specs``; ``classes`` defaults to the first source's class order
    extended by later sources' new names. Each record's ``group`` names its source group."""
    if not specs:
        raise DatasetError("no training data given")
    loader = loader or (lambda path, split: load_dataset(path, split=split))
    datasets = []
    for spec in specs:
        if spec.group_by not in GROUPERS:
            raise DatasetError(f"{spec.path}: unknown group_by {spec.group_by!r}; known: {', '.join(GROUPERS)}")
        datasets.append((spec, loader(Path(spec.path), spec.split)))
    if classes is None:
        classes = []
        for _, data in datasets:
            classes += [c for c in data.class_names if class_for(c, classes) is None]
    images, notes = [], []
    for spec, data in datasets:
        map_classes(data, classes, f"{spec.path}" + (f" (split {spec.split})" if spec.split else ""))
        group_of = GROUPERS[spec.group_by](spec, data.images)
        for record in data.images:
            record.group = group_of(record)
        images += data.images
        notes += [f"{spec.label}: {note}" for note in data.notes]
        notes.append(f"{spec.label}: {len(data)} images from {spec.path}" + (f", split {spec.split}" if spec.split else ""))
    return Dataset(images, list(classes), None, "multi", notes)


def read_sources_file(path: str | Path) -> tuple[list[SourceSpec], list[str] | None]:
    """Parse a sources YAML (see module docstring); relative paths are relative to the file."""
    import yaml

    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetError(f"{path}: cannot read the sources list ({exc})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("sources"), list) or not spec["sources"]:
        raise DatasetError(f"{path}: expected a mapping with a non-empty 'sources' list")
    sources = []
    for i, entry in enumerate(spec["sources"], start=1):
        if not isinstance(entry, dict) or "path" not in entry:
            raise DatasetError(f"{path}: source {i} needs a 'path'")
        unknown = set(entry) - {"path", "split", "group_by", "name"}
        if unknown:
            raise DatasetError(f"{path}: source {i} has unknown keys {sorted(unknown)}")
        sources.append(SourceSpec(path.parent / entry["path"], entry.get("split"), entry.get("group_by", "dataset"),
                                  entry.get("name")))
    classes = spec.get("classes")
    return sources, (list(classes) if classes else None)


def is_sources_file(path: Path) -> bool:
    """A sources YAML (a ``sources:`` list), not a dataset's own YAML (YOLO's ``data.yaml``)."""
    return path.suffix.lower() in (".yaml", ".yml") and path.is_file() and "sources:" in path.read_text(errors="replace")


def source_specs(paths: list[str | Path], split: str | None = None, group_by: str = "dataset",
                 classes: list[str] | None = None) -> tuple[list[SourceSpec], list[str] | None]:
    """What ``--data`` names, as ``SourceSpec``s: each path is a dataset (read at ``split``), or a sources YAML
    listing datasets with their own splits; and the class order (``classes``, else the first YAML's)."""
    specs = []
    for path in map(Path, paths):
        if is_sources_file(path):
            listed, listed_classes = read_sources_file(path)
            specs += listed
            classes = classes or listed_classes
        else:
            specs.append(SourceSpec(path, split, group_by=group_by))
    return specs, classes


def group_weights(data: Dataset) -> dict[str, float]:
    """Per-image sampling weight that gives every source group the same share of an epoch."""
    sizes: dict[str, int] = {}
    for record in data.images:
        sizes[record.group] = sizes.get(record.group, 0) + 1
    mean = len(data) / max(len(sizes), 1)
    return {group: mean / n for group, n in sizes.items()}
