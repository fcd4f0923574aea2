"""Whole-image decoding with OpenCV for formats that cannot stream (JPEG, BMP, WebP, interlaced PNG).

The size is read from the file header first, and files above the pixel cap are refused with
``ImageTooLarge`` before any pixel is decoded. The decode happens on the first read and is kept.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from bcedge.data.imagesize import webp_size
from bcedge.imageio import ImageReadError, megapixels, read_image_with_note
from bcedge.runtime.sources import ImageSource, ImageTooLarge

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # start-of-frame markers


class WholeImageSource(ImageSource):
    def __init__(self, path: Path, width: int, height: int, max_pixels: int, kind: str) -> None:
        super().__init__()
        self.path, self.name, self.width, self.height = path, str(path), int(width), int(height)
        if width <= 0 or height <= 0:
            raise ImageReadError(f"{path}: {kind} header gives an empty size {width}x{height}")
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"{path}: {kind} of {width}x{height} ({megapixels(width * height)} megapixels) must be decoded "
                f"whole, which is above the limit of {megapixels(max_pixels)} megapixels. Convert it to a tiled TIFF "
                "or a non-interlaced PNG (both are read by strips), or raise the limit (--max-pixels, max_pixels= "
                "or BCEDGE_MAX_DECODE_PIXELS) if the machine has the memory (about 6 bytes a pixel)"
            )
        self._pixels: np.ndarray | None = None

    def _read_rows(self, y0: int, y1: int) -> np.ndarray:
        if self._pixels is None:
            pixels, self.note = read_image_with_note(self.path)
            if pixels.shape[:2] != (self.height, self.width):
                raise ImageReadError(f"{self.path}: decoded size {pixels.shape[1]}x{pixels.shape[0]} differs from "
                                     f"its header's {self.width}x{self.height} (corrupt file)")
            pixels.flags.writeable = False  # bands are views of it
            self._pixels = pixels
        return self._pixels[y0:y1]

    def close(self) -> None:
        self._pixels = None


def jpeg_size(path: Path) -> tuple[int, int]:
    """(width, height) from the first start-of-frame marker."""
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            raise ImageReadError(f"{path}: not a JPEG file")
        while True:
            byte = f.read(1)
            if not byte:
                raise ImageReadError(f"{path}: JPEG ends before its frame header (truncated)")
            if byte != b"\xff":
                continue
            marker = f.read(1)
            while marker == b"\xff":  # fill bytes
                marker = f.read(1)
            if not marker:
                raise ImageReadError(f"{path}: JPEG ends before its frame header (truncated)")
            code = marker[0]
            if code in (0x01, 0xD8) or 0xD0 <= code <= 0xD7:  # markers without a length
                continue
            head = f.read(2)
            if len(head) < 2:
                raise ImageReadError(f"{path}: JPEG ends inside a marker (truncated)")
            length = struct.unpack(">H", head)[0]
            if code in _SOF:
                frame = f.read(5)
                if len(frame) < 5:
                    raise ImageReadError(f"{path}: JPEG frame header is truncated")
                height, width = struct.unpack(">xHH", frame)
                return width, height
            f.seek(length - 2, 1)


def bmp_size(path: Path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:2] != b"BM":
        raise ImageReadError(f"{path}: BMP header is truncated")
    if struct.unpack("<I", head[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<hh", head[18:22])
    else:
        width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)


def open_jpeg(path: Path, max_pixels: int) -> ImageSource:
    return WholeImageSource(path, *jpeg_size(path), max_pixels, "JPEG")


def open_bmp(path: Path, max_pixels: int) -> ImageSource:
    return WholeImageSource(path, *bmp_size(path), max_pixels, "BMP")


def open_webp(path: Path, max_pixels: int) -> ImageSource:
    with open(path, "rb") as f:
        head = f.read(30)
    size = webp_size(head)
    if size is None:
        what = "a RIFF file that is not WebP (audio or video?)" if head[8:12] != b"WEBP" else "a WebP whose header is cut"
        raise ImageReadError(f"{path}: {what}")
    return WholeImageSource(path, *size, max_pixels, "WebP")
