"""Image width and height from the file header, without decoding the pixels.

PNG, JPEG, BMP and WebP headers are parsed directly, TIFF through tifffile; anything else is decoded
with OpenCV. Used by readers whose annotations do not state the image size (CSV, some VOC).
"""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from bcedge.imageio import ImageReadError

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(path: str | Path) -> tuple[int, int]:
    """Return (width, height) of an image file; raise ImageReadError naming the file if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such image file")
    with open(path, "rb") as handle:
        head = handle.read(32)
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if head.startswith(b"BM") and len(head) >= 26:
            width, height = struct.unpack("<ii", head[18:26])
            return width, abs(height)
        if head.startswith(b"\xff\xd8"):
            handle.seek(2)
            size = _jpeg_size(handle)
            if size:
                return size
        if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return _tiff_size(path)
        size = webp_size(head)
        if size:
            return size
    return _decoded_size(path)


def webp_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a WebP file's first 30 bytes (lossy VP8, lossless VP8L or extended VP8X), or None."""
    if len(head) < 30 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and head[20] == 0x2F:
        bits = struct.unpack("<I", head[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def _jpeg_size(handle) -> tuple[int, int] | None:
    while True:
        byte = handle.read(1)
        while byte and byte != b"\xff":
            byte = handle.read(1)
        while byte == b"\xff":
            byte = handle.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue  # markers without a length field
        length_bytes = handle.read(2)
        if len(length_bytes) < 2:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if marker in _JPEG_SOF:
            data = handle.read(5)
            if len(data) < 5:
                return None
            height, width = struct.unpack(">HH", data[1:5])
            return (width, height) if width and height else None
        handle.seek(length - 2, 1)


def _tiff_size(path: Path) -> tuple[int, int]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            return int(page.imagewidth), int(page.imagelength)
    except Exception as exc:  # tifffile raises many types for broken files
        raise ImageReadError(f"{path}: not a readable TIFF ({exc})") from exc


def _decoded_size(path: Path) -> tuple[int, int]:
    data = np.fromfile(str(path), dtype=np.uint8)
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if pixels is None:
        raise ImageReadError(f"{path}: not a readable image (corrupt, truncated or not an image format)")
    return int(pixels.shape[1]), int(pixels.shape[0])
