"""Reading images as RGB uint8 arrays, with errors that name the file and the problem."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
PHONE_SUFFIXES = (".heic", ".heif", ".avif")   # photos OpenCV cannot decode: refused by name, not passed over


def megapixels(pixels: float) -> str:
    """A pixel count for a message: "537", "2.4", "0.31" (megapixels; a small image is not "0")."""
    value = pixels / 1e6
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


class ImageReadError(IOError):
    """An image file is missing, empty, truncated, corrupt or not an image."""


def colour_samples(pixels: np.ndarray) -> np.ndarray:
    """The colour (or grey) samples of pixels, without an alpha channel."""
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        return pixels[:, :, : pixels.shape[2] - 1]
    return pixels


def significant_bits(max_value: int) -> int:
    """The bits a 16-bit image's samples use, from its largest one.

    Scientific cameras store 10, 12 or 14 bits in 16-bit files and frames; shifting such an image by 8
    would leave it nearly black (a 12-bit white of 4095 becomes 15). The count is rounded up to an even
    number of bits, as those depths are, so that a dim image is not brightened beyond its camera's range.
    """
    bits = max(8, int(max_value).bit_length())
    return min(16, bits + bits % 2)


def to_rgb(pixels: np.ndarray, source: str = "image", bits: int | None = None) -> tuple[np.ndarray, str | None]:
    """Return (RGB uint8 HxWx3, note) from greyscale, RGB(A) or 16-bit input; note says what was converted.

    ``bits``: a 16-bit image's significant bits (``significant_bits``); None: from these pixels' largest value.
    A streamed image passes the same ``bits`` for every band, so that all are scaled alike.
    """
    note = None
    if pixels.dtype == np.uint16:
        if bits is None:
            bits = significant_bits(int(colour_samples(pixels).max(initial=0)))
        pixels = np.minimum(pixels >> (bits - 8), 255).astype(np.uint8)
        note = f"16-bit image ({bits} significant bits) scaled to 8 bits"
    elif pixels.dtype != np.uint8:
        raise ImageReadError(f"{source}: unsupported pixel type {pixels.dtype}")
    if pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 1):
        return np.repeat(pixels.reshape(pixels.shape[0], pixels.shape[1], 1), 3, axis=2), "greyscale image converted to RGB"
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise ImageReadError(f"{source}: unsupported image shape {pixels.shape}")
    if pixels.shape[2] == 4:
        return np.ascontiguousarray(pixels[:, :, :3]), "RGBA image: alpha channel dropped"
    return pixels, note


def read_image(path: str | Path) -> np.ndarray:
    """Decode a whole image file to RGB uint8 (H, W, 3). For huge smears use ``bcedge.runtime.sources``."""
    rgb, _ = read_image_with_note(path)
    return rgb


def read_image_with_note(path: str | Path) -> tuple[np.ndarray, str | None]:
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such image file")
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise ImageReadError(f"{path}: file is empty (zero bytes)")
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if pixels is None:
        raise ImageReadError(f"{path}: not a readable image (corrupt, truncated or not an image format)")
    if pixels.ndim == 3 and pixels.shape[2] >= 3:  # OpenCV decodes to BGR(A)
        order = [2, 1, 0] + ([3] if pixels.shape[2] == 4 else [])
        pixels = pixels[:, :, order]
    return to_rgb(np.ascontiguousarray(pixels), str(path))
