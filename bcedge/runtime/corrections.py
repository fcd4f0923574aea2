"""The light corrections the counter makes to an image before anything else: an uneven lamp divided out
(``runtime.illumination``) and an eyepiece's dark surround filled (``runtime.field_stop``).

Both are measured on one coarse sample of the image, read by bands, and applied band by band as the
image is read, so the thumbnail guess, the scale probes and the count all see the corrected pixels. Each
correction made adds its flag to the result; so does a grey image with three channels (a monochrome camera's
frame saved as colour), seen on the same sample (read even with both corrections off) and flagged ``greyscale``
(``bcedge.runtime.frames``). ``Corrections`` is small and picklable: cluster band jobs carry the driver's, so
workers see the same pixels. Images over ``MAX_MEASURED_PIXELS`` (slide scans, flat-fielded
by their scanner, with no field stop) are not measured.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bcedge.runtime.field_stop import FieldStop, found_field_stop
from bcedge.runtime.frames import FIELD_STOP, GREYSCALE, UNEVEN_LIGHT, looks_grey
from bcedge.runtime.illumination import (
    Lamp,
    fitted_lamp_if_uneven,
    grey_levels,
    sample_step,
    sampled_colour,
)
from bcedge.runtime.sources import ImageSource

MAX_MEASURED_PIXELS = 64_000_000   # larger images are counted as they are


@dataclass(frozen=True)
class Corrections:
    """What is corrected in an image: the lamp it is divided by, the surround that is filled (None: not)."""

    lamp: Lamp | None = None
    field_stop: FieldStop | None = None

    def __bool__(self) -> bool:
        return self.lamp is not None or self.field_stop is not None

    @property
    def flags(self) -> list[str]:
        return [flag for flag, made in ((UNEVEN_LIGHT, self.lamp), (FIELD_STOP, self.field_stop)) if made is not None]

    def rows(self, rows: np.ndarray, width: int, height: int, y0: int) -> np.ndarray:
        """Rows ``y0:y0 + len(rows)`` of a ``width x height`` image, corrected: evened, then the surround filled
        (with the evened background's colour)."""
        if self.lamp is not None:
            rows = self.lamp.evened(rows, width, height, y0)
        if self.field_stop is not None:
            rows = self.field_stop.filled(rows, width, height, y0)
        return rows


NO_CORRECTIONS = Corrections()


class CorrectedSource(ImageSource):
    """``source`` with ``corrections`` applied, read by bands."""

    def __init__(self, source: ImageSource, corrections: Corrections) -> None:
        super().__init__()
        self.source, self.corrections, self.name = source, corrections, source.name
        self.width, self.height = source.width, source.height

    def _read_rows(self, y0: int, y1: int) -> np.ndarray:
        rows = self.source.read_rows(y0, y1)
        self.note = self.note or self.source.note
        return self.corrections.rows(rows, self.width, self.height, y0)


def measured_corrections(src: ImageSource, even_light: bool = True, fill_surround: bool = True,
                         colour: np.ndarray | None = None) -> Corrections:
    """The corrections ``src`` needs, of those asked for (``colour``: its ``sampled_colour``, if already read)."""
    if not (even_light or fill_surround) or src.width * src.height > MAX_MEASURED_PIXELS:
        return Corrections()
    colour = sampled_colour(src) if colour is None else colour
    lamp = fitted_lamp_if_uneven(grey_levels(colour)) if even_light else None
    field_stop = found_field_stop(colour, sample_step(src.width, src.height), lamp) if fill_surround else None
    return Corrections(lamp, field_stop)


def corrected(src: ImageSource, even_light: bool = True, fill_surround: bool = True) -> tuple[ImageSource, list[str]]:
    """``src`` with the corrections it needs applied (``src`` itself when none), and their flags (with
    ``greyscale`` for a grey image)."""
    if src.width * src.height > MAX_MEASURED_PIXELS:
        return src, []
    colour = sampled_colour(src)
    corrections = measured_corrections(src, even_light, fill_surround, colour)
    flags = corrections.flags + ([GREYSCALE] if looks_grey(colour) else [])
    return (CorrectedSource(src, corrections) if corrections else src), flags
