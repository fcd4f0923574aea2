"""Loading a dataset for training: read, validate with the drop policy, say what was repaired."""
from __future__ import annotations

from pathlib import Path

from bcedge.data import load_dataset
from bcedge.data.annotations import Dataset


def load_training_data(path: str | Path, split: str | None = None, classes: list[str] | None = None,
                       log=print) -> Dataset:
    """A dataset whose invalid boxes and unreadable images are dropped, each named in the log."""
    from bcedge.data.validate import validate

    data = load_dataset(path, split=split)
    report = validate(data, policy="drop", classes=classes)
    if report.problems:  # validate() has logged the summary line; name the problems themselves
        log(report.details(limit=10))
    if not data.images:
        raise ValueError(f"{path}: no usable images left after validation")
    return data


def load_training_sources(paths: list[str | Path], split: str | None = None, group_by: str = "size",
                          classes: list[str] | None = None, log=print) -> Dataset:
    """Several datasets as one training set (``bcedge.data.multisource``): each path is a dataset, or a
    sources YAML listing datasets with their splits; classes are matched by name. Validated like one."""
    from bcedge.data.multisource import load_sources, source_specs
    from bcedge.data.validate import validate

    specs, classes = source_specs(paths, split, group_by, classes)
    data = load_sources(specs, classes)
    report = validate(data, policy="drop", classes=classes)
    if report.problems:
        log(report.details(limit=10))
    if not data.images:
        raise ValueError(f"{', '.join(map(str, paths))}: no usable images left after validation")
    return data
