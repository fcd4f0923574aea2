"""Synthetic thin blood smears of any size with exact labels, for tests, tiling/merge checks and scale
benchmarks. They are NEVER evidence of accuracy on real smears: the cells are drawn from simple
shapes and colours chosen to resemble BCCD images, nothing more.

How it works: :func:`make_layout` places every cell first (cheap, O(cells)); :class:`StripRenderer`
then renders horizontal strips, painting only the cells that cross each strip, so a 16k x 16k (or
larger) smear never needs all its pixels in memory. Ground truth (tight boxes, polygons, pixel
areas, overlap shares) comes from the same outlines that are painted: see :mod:`.truth` for the
conventions. Same seed, size and config give byte-identical pixels and labels (on one machine and
library stack), whatever the strip height.

    >>> from bcedge.data.synth import generate_smear
    >>> result = generate_smear(4096, 3072, seed=1, out="smear.png", parasites=True)   # + smear.json
    >>> result.counts
"""
from bcedge.data.synth.api import SmearResult, generate_smear, labels_path_for
from bcedge.data.synth.config import CELL_CLASSES, PLATELETS, RBC, RING, WBC, SmearConfig, SmearStyle
from bcedge.data.synth.layout import Cell, Layout, make_layout
from bcedge.data.synth.render import StripRenderer, render_layout
from bcedge.data.synth.sinks import SMEAR_FORMATS, SmearFormat, register_smear_format
from bcedge.data.synth.truth import CellTruth, to_coco

__all__ = [
    "generate_smear", "SmearResult", "labels_path_for", "SmearConfig", "SmearStyle", "make_layout", "Layout",
    "Cell", "StripRenderer", "render_layout", "CellTruth", "to_coco", "SMEAR_FORMATS", "SmearFormat", "register_smear_format",
    "CELL_CLASSES", "RBC", "WBC", "PLATELETS", "RING",
]
