"""Datasets: annotation types, one reader per format, validation, stats and the COCO writer.

    ds = load_dataset("data/bccd", split="train")      # format sniffed from what the path holds
    report = validate(ds, policy="drop")               # repairs ds in place, names every problem
    print(format_stats(dataset_stats(ds)))
"""
from __future__ import annotations

from pathlib import Path

from bcedge.data.annotations import Dataset, ImageAnnotation
from bcedge.data.coco import write_coco
from bcedge.data.formats import READERS, WRITERS, DatasetError, detect_format, load_dataset
from bcedge.data.stats import dataset_stats, format_stats
from bcedge.data.validate import Problem, ValidationReport, validate  # binds the function over the submodule name

__all__ = ["Dataset", "ImageAnnotation", "DatasetError", "Problem", "ValidationReport", "READERS", "WRITERS",
           "dataset_stats", "detect_format", "format_stats", "load_dataset", "sample_dataset_path", "validate", "write_coco"]


def sample_dataset_path() -> Path:
    """The bundled 3-image BCCD sample (Pascal VOC, split "val"), for demos and smoke tests."""
    return Path(__file__).resolve().parent.parent / "assets" / "sample_bccd"
