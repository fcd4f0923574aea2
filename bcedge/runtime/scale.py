"""Bringing images to the model's working scale: what the user says, or an estimate from the image.

A model trained with a pixel scale (``ModelMeta.pixel_scale``: its median red cell is ``cell_px``
model pixels) counts best when a user's red cells are that size too. The factor that resamples a
user's image to it comes from, in order of trust:

- ``cell_size=PX``: the median red-cell diameter in the user's pixels;
- ``um_per_px=X``: the rig's calibration, through the red cell's typical diameter (7.5 um);
- ``cell_size="auto"`` (the default): an estimate from the image itself. The detector counts the
  image at a first guess, the median diameter of the whole red cells it found gives the scale, and the
  image is counted again only if that scale differs from the guess by more than ``REUSE_TOLERANCE``.
  The first pass on a large image looks at a central crop only.

  The first guess: for an image of the last one's frame size, the median of the last few images'
  estimates (``History``): images from one rig share a scale, so a stream rarely pays the second pass.
  For a counter's first image, or one of another frame size (perhaps another camera), what a small
  network reads from its thumbnail (``bcedge.runtime.scale_prior``; without it, the last images' scale,
  else the training data's median). A measurement further than ``NEW_RIG_RATIO`` from the last images'
  scale starts a new history, as does one of another frame size further than ``REUSE_TOLERANCE`` from it
  (another camera), so after a change of microscope, objective or camera the next image starts from the
  new rig's scale, not from the median of the old one's.

  A rig's first image (a counter's first, or one of another frame size whose thumbnail reads a scale far
  from the last images') whose first pass finds too few whole red cells, or red cells the detector is
  unsure of (a guess far from the image's scale: it then finds cell parts), unless they measure what the
  thumbnail suggested (``confirms``; in a sparse field, such as a white cell's with most red cells cut by
  the edge, one or two whole red cells the detector is sure of may), is followed by passes at powers of
  2 around the guess (``ladder``: half and twice a thumbnail's guess, 1/8x to 4x a guess from the
  training scale); the one whose red cells the detector is surest of gives the scale, unless it agrees
  with the first pass's. A single image from a microscope of 0.3x or 5x the training magnification is
  measured, not counted at the training scale. A rig's first image that is a sparse field, with too few
  whole red cells to measure but red cells the detector is sure of at the thumbnail's scale
  (``Measurement.sparse``), is counted there: no other scale would show it more whole cells. Too few
  whole red cells at every scale otherwise: the scale of the images the counter counted before (the same
  rig), or with none, the training images' typical scale (their median red cell; not the thumbnail's
  reading alone, which only says where to look first), said so in the result.

``SNAP`` keeps images near the working scale at their own pixels (no interpolation, no resampling
time). ``REUSE_TOLERANCE`` was chosen on the val splits (``benchmarks/scale_estimate.py
--reuse-tolerances``): keeping a first pass up to 15% off the estimate, against 10%, cost 0.25 point
of TXL-PBC val mAP50 (0.46 with the stain-tuned weights; none on BCCD val) and halved the second
passes of a rig's stream (to under 15% of its time). The counter remembers what it measured, never
the snapped factor: a remembered 1 among measured 0.87s would flip the next guess between the two.

Models without a pixel scale (older artifacts) count at their tile scale (factor 1).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from bcedge.artifact import ModelMeta
from bcedge.data.cellsize import SCALE_CLASS, whole_box_diameters
from bcedge.detections import Detections

RBC_DIAMETER_UM = 7.5        # a normal red cell's diameter: turns a rig's um/px into a cell size in pixels
SNAP = 0.15                  # factors within 15% of 1 are taken as 1: no resampling
REUSE_TOLERANCE = 0.15       # a first pass this close to the estimated scale is the count
MIN_CELLS = 3                # whole red cells needed for an estimate
PROBE_SIDE = 512             # the first pass on a large image: a central crop this many model pixels across
MIN_SCORE = 0.5              # only confident red cells measure the scale (evaluation keeps boxes down to 0.001)
MIN_FACTOR, MAX_FACTOR = 1 / 16, 8.0
# A pass far from the working scale finds cell parts or nothing: its confident red cells score about 0.55 on
# average, against 0.75-0.9 within 2x of it (the default model on TXL-PBC val frames from 0.35x to 5x).
TRUSTED_CONFIDENCE = 0.7
# A first pass that measures the scale the thumbnail suggested needs less: two independent readings agree. Dense
# BCCD frames at the right scale score 0.63-0.70 (8 of 87 val frames), passes far from it about 0.55.
CONFIRMED_CONFIDENCE = 0.6
LADDER_STEPS = (-3, -2, -1, 1, 2)   # powers of 2 tried around an untrusted first pass: cells 8x larger to 4x smaller
# around a guess read from the thumbnail, which is within 2x of the labels on all but 1 of 2,928 val images at
# 0.35-5x, one step each way is enough (a step up of 2x costs 4x the first pass's pixels, of 4x 16x)
THUMBNAIL_LADDER_STEPS = (-1, 1)
# Scales further apart than this ratio are different rigs (another microscope, objective or camera), not the spread of
# one rig's measurements (their p90 error is 4-9%): a measurement this far from the history starts a new one, and an
# image of another frame size whose thumbnail reads this far from the history is counted as a rig's first image
NEW_RIG_RATIO = 1.5
HISTORY_LENGTH = 5


@dataclass(frozen=True)
class History:
    """What a counter remembers of the images it measured: their scales (unsnapped factors, oldest first; the median
    is the next image's first guess) and the last one's frame size (a frame of another size may be another rig's)."""

    factors: tuple[float, ...] = ()
    frame: tuple[int, int] | None = None

    def __bool__(self) -> bool:
        return bool(self.factors)

    @property
    def guess(self) -> float:
        return float(np.median(self.factors))

    def after(self, factor: float, frame: tuple[int, int]) -> History:
        """The history once an image of size ``frame`` measured ``factor``. A new rig's image starts a new history,
        so that its next image does not start from the old rig's scale: a scale far from the last images'
        (``same_rig``), or a frame of another size (another camera) whose scale is off theirs by more than a first
        pass may be (``REUSE_TOLERANCE``)."""
        frame = (int(frame[0]), int(frame[1]))
        same = self and same_rig(factor, self.guess) and (frame == self.frame or close_enough(factor, self.guess))
        return History((*(self.factors if same else ()), float(factor))[-HISTORY_LENGTH:], frame)


@dataclass
class Scale:
    """How an image was resampled before counting (``factor`` = model pixels per image pixel)."""

    factor: float
    method: str                      # "model" (no scale metadata), "cell-size", "um-per-px", "auto", "fallback"
    cell_px: float | None = None     # the user's median red-cell diameter (given or estimated), image pixels
    cells: int = 0                   # whole red cells the estimate rests on
    passes: int = 1                  # counting passes the auto estimate took
    note: str = ""

    def to_dict(self) -> dict:
        out = asdict(self)
        out["factor"] = round(self.factor, 4)
        out["cell_px"] = None if self.cell_px is None else round(self.cell_px, 1)
        return out


def model_cell_px(meta: ModelMeta) -> float | None:
    """The model's working scale (median red cell, model pixels), or None for models without one."""
    value = (meta.pixel_scale or {}).get("cell_px")
    return float(value) if value else None


def training_median_px(meta: ModelMeta) -> float | None:
    """The median red cell of the training images, in their own pixels: the auto estimate's first guess."""
    value = ((meta.pixel_scale or {}).get("training_data") or {}).get("median_px")
    return float(value) if value else None


def snap(factor: float) -> float:
    """The factor to count at: 1 (no resampling) when that is close enough."""
    return 1.0 if abs(factor - 1.0) <= SNAP else factor


def check_scale_options(cell_size, um_per_px) -> None:
    """Refuse what cannot be a cell size or a pixel pitch, before any work."""
    if cell_size not in (None, "auto"):
        value = float(cell_size)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"--cell-size must be a positive number of pixels (or 'auto'), got {cell_size!r}")
    if um_per_px is not None:
        value = float(um_per_px)
        if not math.isfinite(value) or value <= 0 or value > 10:
            raise ValueError(f"--um-per-px must be a positive pixel pitch up to 10 um, got {um_per_px!r}")
        if cell_size not in (None, "auto"):
            raise ValueError("give --cell-size or --um-per-px, not both")


def given_scale(meta: ModelMeta, cell_size, um_per_px, image_size: tuple[int, int],
                source: str = "image") -> Scale | None:
    """The scale the user fixed (or the model's own, without metadata); None when it is to be estimated."""
    target = model_cell_px(meta)
    if target is None:
        note = "" if cell_size in (None, "auto") and um_per_px is None else "the model has no pixel scale: options ignored"
        return Scale(1.0, "model", note=note)
    if um_per_px is not None:
        cell = RBC_DIAMETER_UM / float(um_per_px)
        method = "um-per-px"
    elif cell_size not in (None, "auto"):
        cell, method = float(cell_size), "cell-size"
    else:
        return None
    if cell >= max(image_size):
        raise ValueError(f"{source}: a red cell of {cell:g} px (from the {method} given) is larger than the image "
                         f"({image_size[0]}x{image_size[1]})")
    return Scale(clamp(snap(target / cell)), method, cell_px=cell)


def clamp(factor: float) -> float:
    return float(min(max(factor, MIN_FACTOR), MAX_FACTOR))


def whole_cell_diameters(detections: Detections, class_names: list[str], image_size: tuple[int, int],
                         min_score: float = MIN_SCORE) -> np.ndarray:
    """Diameters (mean box side) of confidently detected red cells whose boxes keep clear of the image edge."""
    if SCALE_CLASS not in class_names or not len(detections):
        return np.zeros(0, np.float32)
    chosen = (detections.class_ids == class_names.index(SCALE_CLASS)) & (detections.scores >= min_score)
    return whole_box_diameters(detections.xyxy[chosen], *image_size)


@dataclass(frozen=True)
class Measurement:
    """What one pass says of the scale: the factor its whole red cells give (None: too few of them), and how
    sure the detector was of its red cells (their mean score). ``sparse_factor``: what one or two whole red cells
    give, too few to measure an image on their own (``MIN_CELLS``), enough to confirm the thumbnail's guess."""

    factor: float | None
    cells: int
    confidence: float
    sparse_factor: float | None = None

    @property
    def trusted(self) -> bool:
        """Enough whole red cells, found with the scores the detector gives cells near its working scale."""
        return self.factor is not None and self.confidence >= TRUSTED_CONFIDENCE

    @property
    def sparse(self) -> bool:
        """Too few whole red cells to measure, but red cells found with the scores the detector gives near its
        working scale: a sparse field (a white cell's, most red cells cut by the image edge), which no other scale
        would show more whole red cells of."""
        return self.factor is None and self.confidence >= TRUSTED_CONFIDENCE


def confirms(measurement: Measurement, guess: float) -> bool:
    """Whether a first pass not sure enough on its own, or finding too few whole red cells to measure, measured what
    the thumbnail suggested (``guess``): two independent readings agree. Enough whole red cells need scores above
    those of passes far from the working scale; one or two (a sparse field: a white cell and a few red cells, most
    cut by the image edge) need the scores of passes near it."""
    if measurement.factor is not None:
        return measurement.confidence >= CONFIRMED_CONFIDENCE and close_enough(measurement.factor, guess)
    return (measurement.sparse_factor is not None and measurement.confidence >= TRUSTED_CONFIDENCE
            and close_enough(measurement.sparse_factor, guess))


def estimate_from(detections: Detections, class_names: list[str], region_size: tuple[int, int],
                  target_px: float) -> Measurement:
    """The scale a pass's detections (in the user's pixels) give.

    The factor is the measurement, not snapped: the counter snaps the factor it counts at, and keeps
    the measurements as its guess for the next image of the stream.
    """
    diameters = whole_cell_diameters(detections, class_names, region_size)
    confident = np.zeros(0, np.float32)
    if SCALE_CLASS in class_names and len(detections):
        red = detections.class_ids == class_names.index(SCALE_CLASS)
        confident = detections.scores[red & (detections.scores >= MIN_SCORE)]
    confidence = float(confident.mean()) if len(confident) else 0.0
    factor = clamp(target_px / float(np.median(diameters))) if len(diameters) else None
    if len(diameters) < MIN_CELLS:
        return Measurement(None, len(diameters), confidence, sparse_factor=factor)
    return Measurement(factor, len(diameters), confidence)


def ladder(guess: float, steps: tuple[int, ...] = LADDER_STEPS) -> list[float]:
    """Other scales to look at when a pass at ``guess`` finds no cells it is sure of: powers of 2 around it."""
    factors = [clamp(guess * 2.0 ** k) for k in steps]
    return sorted({f for f in factors if not close_enough(f, guess, 0.1)})


def chosen_probe(probes: list[tuple[float, Measurement]]) -> tuple[float, Measurement]:
    """The (probe factor, measurement) that sets the scale, from the first pass and the ladder's: the one whose red
    cells the detector was surest of (of equally sure ones, to 0.01, the one that measured nearest its own scale),
    unless the first pass measured within ``REUSE_TOLERANCE`` of it; the first pass when none measured."""
    first = probes[0]
    measured = [p for p in probes if p[1].factor is not None]
    if not measured:
        return first
    surest = max(measured, key=lambda p: (round(p[1].confidence, 2), -abs(math.log(p[1].factor / p[0]))))
    agrees = first[1].factor is not None and close_enough(surest[1].factor, first[1].factor)
    return first if agrees else surest


def same_rig(a: float, b: float) -> bool:
    """Whether two scales may be one rig's (within ``NEW_RIG_RATIO`` of each other)."""
    return abs(math.log(a / b)) <= math.log(NEW_RIG_RATIO)


def close_enough(a: float, b: float, tolerance: float | None = None) -> bool:
    """Factors within ``tolerance`` (default ``REUSE_TOLERANCE``, read at call time) of each other, in ratio."""
    return abs(math.log(a / b)) <= math.log1p(REUSE_TOLERANCE if tolerance is None else tolerance)
