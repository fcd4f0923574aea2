"""What the counter takes, checked before any work: a wrong array is refused with what was expected,
a doubtful input is counted but flagged, and every image must fit a pixel budget.

Arrays (``Counter.count``):
- ``(H, W, 3)`` RGB, uint8 or uint16, is counted as it is (uint16 scaled by the bits it uses: a 12-bit
  camera's frame by 16, ``bcedge.imageio.significant_bits``); ``(H, W, 4)`` RGBA loses its alpha;
- ``(H, W)`` or ``(H, W, 1)`` greyscale is counted as RGB with three equal channels and flagged
  ``greyscale``, as is a greyscale image file: the model learnt cell types from stain colours, so
  its counts on grey pixels are less reliable (a test image counted 17/0/0 in grey, 13/1/0 in colour);
- channels first (``(3, H, W)``), 2 channels, 5 or more, other dtypes: refused (``ValueError``).

The pixel budget (``ImageTooLarge`` above it) stops an input that would run for hours, or exhaust
memory on the detections and outputs. The default is one pixel per 16 bytes of the machine's memory
(an 8 GB edge box: 537 Mpx, about 23k x 23k; a 20k x 20k scan counts in minutes there). Raise it with
``Counter(max_pixels=...)``, ``--max-pixels`` or ``$BCEDGE_MAX_PIXELS``; 0 means no budget. A budget given
that way also raises the cap on images that must be decoded whole (JPEG, BMP, WebP, interlaced PNG: 268 Mpx by
default, ``bcedge.runtime.sources``).
"""
from __future__ import annotations

import os

import numpy as np

from bcedge.imageio import megapixels
from bcedge.runtime.sources import OPENCV_MAX_PIXELS, ImageSource, ImageTooLarge, max_decode_pixels

GREYSCALE = "greyscale"
NOISY = "noisy"   # set by the counter (``bcedge.runtime.denoise``), not by the input checks
UNEVEN_LIGHT = "uneven light"   # set by the counter (``bcedge.runtime.illumination``)
FIELD_STOP = "field stop"       # set by the counter (``bcedge.runtime.field_stop``)
FIRST_PAGE = "first page"       # a file holding several images (a TIFF stack): only the first was counted
FLAG_NOTES = {GREYSCALE: "greyscale input: the model was trained on colour smears; counts may be less accurate",
              NOISY: "a noisy camera's grain: smoothed before counting; counts may be less accurate",
              UNEVEN_LIGHT: "unevenly lit (dark corners or a lamp off-centre): evened before counting",
              FIELD_STOP: "a round field (an eyepiece's dark surround): the surround filled with the background before "
                          "counting; cells cut by it are counted as at the image edge",
              FIRST_PAGE: "a file of several images (a TIFF stack): only the first was counted; save each as its own "
                          "file to count them all"}
BYTES_PER_PIXEL = 16
FALLBACK_BUDGET = 2**29  # when the memory size cannot be read


def memory_bytes() -> int | None:
    """Physical memory of this machine, or None where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def pixel_budget(max_pixels: int | None = None) -> int | None:
    """The cap in pixels: ``max_pixels``, else ``$BCEDGE_MAX_PIXELS``, else memory / 16 bytes; None: no cap."""
    if max_pixels is None:
        env = os.environ.get("BCEDGE_MAX_PIXELS")
        if env:
            try:
                max_pixels = int(float(env))
            except ValueError:
                raise ValueError(f"BCEDGE_MAX_PIXELS={env!r} is not a number of pixels") from None
        else:
            memory = memory_bytes()
            return memory // BYTES_PER_PIXEL if memory else FALLBACK_BUDGET
    return int(max_pixels) if max_pixels > 0 else None


def decode_cap(max_pixels: int | None) -> int | None:
    """The whole-decode cap (``bcedge.runtime.sources``) for a pixel budget the user gave: raised to the budget, so
    that ``--max-pixels`` raises both (0, no budget: OpenCV's own limit), never lowered (a smaller budget refuses
    with its own message); None, no budget given: the default."""
    if max_pixels is None:
        return None
    return max(int(max_pixels), max_decode_pixels()) if max_pixels > 0 else OPENCV_MAX_PIXELS


def check_size(width: int, height: int, max_pixels: int | None = None, source: str = "image") -> None:
    """Raise ``ImageTooLarge`` if ``width x height`` is over the pixel budget (see ``pixel_budget``)."""
    budget = pixel_budget(max_pixels)
    if budget is not None and width * height > budget:
        raise ImageTooLarge(
            f"{source}: {width}x{height} = {megapixels(width * height)} Mpx is over the pixel budget of "
            f"{megapixels(budget)} Mpx; raise it with --max-pixels, Counter(max_pixels=...) or BCEDGE_MAX_PIXELS "
            "(0: no budget)")


def check_frame(frame: np.ndarray, max_pixels: int | None = None, source: str = "frame") -> tuple[np.ndarray, list[str]]:
    """The frame as (H, W, C) with C in 1, 3, 4 and its flags; raises ``ValueError`` saying what was
    expected, or ``ImageTooLarge``."""
    array = np.asarray(frame)
    expected = "expected an RGB image array (H, W, 3) (or RGBA (H, W, 4), or greyscale (H, W)) of uint8 or uint16"
    if array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{source}: {expected}; got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(f"{source}: {expected}; got shape {array.shape}")
    height, width, channels = array.shape
    if channels not in (1, 3, 4):
        if height in (1, 3, 4) and width > 4 and channels > 4:
            raise ValueError(f"{source}: {expected}; got shape {array.shape}, which looks channels-first "
                             f"(C, H, W): pass np.transpose(frame, (1, 2, 0))")
        raise ValueError(f"{source}: {expected}; got {channels} channels (shape {array.shape})")
    if height == 0 or width == 0:
        raise ValueError(f"{source}: {expected}; got an empty image (shape {array.shape})")
    check_size(width, height, max_pixels, source)
    return array, [GREYSCALE] if channels == 1 else []


def source_flags(src: ImageSource) -> list[str]:
    """Flags of an image read from a file: ``greyscale`` when its pixels were grey, ``first page`` when the file
    holds more images of the same size."""
    grey = [GREYSCALE] if src.note and "greyscale" in src.note else []
    return grey + ([FIRST_PAGE] if src.pages > 1 else [])


def looks_grey(rgb: np.ndarray) -> bool:
    """Whether RGB uint8 pixels (a sample of an image) are grey: a monochrome camera's frame saved with three equal
    channels. Only mid-grey pixels count (black surrounds and white glare are grey in any image), and a decoder's
    rounding (a grey JPEG's channels differ by 1-2) is allowed: fewer than 0.2% of them may differ by over 4."""
    pixels = rgb.reshape(-1, 3)
    spread = pixels.max(axis=1).astype(np.int16) - pixels.min(axis=1)
    level = pixels.mean(axis=1)
    mid = (level >= 16) & (level <= 240)
    return int(mid.sum()) >= 100 and float((spread[mid] > 4).mean()) < 0.002
