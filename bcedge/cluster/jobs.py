"""The messages between the driver and its workers: small, picklable, and free of pixels.

An image travels as its path (workers read it from storage they share with the driver); a band of a
huge image as its path, the region counted (a crop window and a scale) and a range of the tile grid.
Outcomes carry detections back, or the exception a bad input raised, so the driver reports it as the
local run does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bcedge.detections import Detections
from bcedge.runtime.corrections import Corrections
from bcedge.runtime.scale import History


@dataclass(frozen=True)
class ImageJob:
    """Count one image file. ``history``: the scales of the images before it, as the local run's
    ``Counter`` would remember them (its auto-scale guess; see ``bcedge.cluster.ordering``)."""

    index: int
    path: str
    history: History = field(default_factory=History)


@dataclass
class ImageOutcome:
    index: int
    history: History                       # the history it was counted with
    result: object = None                  # CountResult
    error: BaseException | None = None     # what a bad input raised (OSError, ValueError), as in the local run
    history_after: History = field(default_factory=History)   # the counter's history once it was counted


@dataclass(frozen=True)
class BandJob:
    """Tiles ``tiles[0]:tiles[1]`` of the grid a ``Counter`` lays over ``path`` (cropped to ``window``,
    resampled by ``factor``, blurred by ``smooth`` px when the driver found it noisy, 0: not; with the light
    ``corrections`` the driver found it needs); ``grid`` is that grid's (tile_w, tile_h, tiles), checked by the worker."""

    path: str
    window: tuple[int, int, int, int] | None
    factor: float
    tiles: tuple[int, int]
    grid: tuple[int, int, int]
    smooth: float = 0.0
    corrections: Corrections = field(default_factory=Corrections)


@dataclass
class BandOutcome:
    tiles: tuple[int, int]
    per_tile: list[tuple[int, Detections]] = field(default_factory=list)   # (tile index, detections in tile pixels)
    note: str | None = None                # what the reader converted (greyscale, 16-bit): the image's flags
    error: BaseException | None = None
