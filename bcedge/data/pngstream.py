"""Write a PNG row band by row band, so an image larger than memory never has to exist as one array.

Pure Python + zlib: IHDR, then one IDAT chunk per band of rows (whatever the compressor emitted for
it), then IEND. Non-interlaced, 8-bit RGB (colour type 2) or greyscale (colour type 0). Each row is
filtered with one fixed PNG filter (computed with numpy; PNG filters use the unfiltered bytes of the
row and of the row above, so filtering vectorises, only decoding is sequential).

The file appears under its final name only when :meth:`PngStreamWriter.close` has written IEND; until
then it is a temporary file beside it (``bcedge.atomic``), so a reader never mistakes a half-written
PNG for a finished one.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from bcedge.atomic import AtomicFile

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_CHUNK = 1 << 30  # PNG allows 2**31-1 bytes per chunk; stay well below


def _filter_none(rows: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    return rows


def _filter_sub(rows: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    out = rows.copy()
    out[:, bpp:] -= rows[:, :-bpp]  # uint8 arithmetic wraps modulo 256, as PNG requires
    return out


def _filter_up(rows: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    prev = np.concatenate([above[None], rows[:-1]])
    return rows - prev


def _filter_paeth(rows: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    x = rows.astype(np.int16)
    b = np.concatenate([above[None].astype(np.int16), x[:-1]])
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    c = np.zeros_like(x)
    c[:, bpp:] = b[:, :-bpp]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    return (x - pred).astype(np.uint8)


# name -> (PNG filter type byte, function(rows, row_above, bytes_per_pixel) -> filtered rows)
PNG_FILTERS: dict[str, tuple[int, Callable[[np.ndarray, np.ndarray, int], np.ndarray]]] = {
    "none": (0, _filter_none),
    "sub": (1, _filter_sub),
    "up": (2, _filter_up),
    "paeth": (4, _filter_paeth),
}


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


class PngStreamWriter:
    """Append rows of an 8-bit RGB (or greyscale) image to a PNG file; call :meth:`close` to finish.

    >>> with PngStreamWriter(path, width, height) as png:
    ...     for band in bands:          # uint8 arrays (rows, width, 3), top to bottom
    ...         png.write_rows(band)
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        channels: int = 3,
        compress_level: int = 6,
        filter: str = "sub",
    ) -> None:
        if width < 1 or height < 1 or width >= 2**31 or height >= 2**31:
            raise ValueError(f"{path}: PNG size must be 1..2**31-1 per side, got {width}x{height}")
        if channels not in (1, 3):
            raise ValueError(f"{path}: PNG writer takes 1 (grey) or 3 (RGB) channels, got {channels}")
        if filter not in PNG_FILTERS:
            raise ValueError(f"{path}: unknown PNG filter {filter!r}; choose one of {sorted(PNG_FILTERS)}")
        self.path = Path(path)
        self.width, self.height, self.channels = int(width), int(height), channels
        self.rows_written = 0
        self._filter_byte, self._filter = PNG_FILTERS[filter]
        self._above = np.zeros(self.width * channels, np.uint8)
        self._zip = zlib.compressobj(compress_level)
        self._file = AtomicFile(self.path)
        colour_type = 2 if channels == 3 else 0
        ihdr = struct.pack(">IIBBBBB", self.width, self.height, 8, colour_type, 0, 0, 0)
        self._file.write(PNG_SIGNATURE + _chunk(b"IHDR", ihdr))

    def write_rows(self, rows: np.ndarray) -> None:
        """Append ``rows`` (uint8, shape (n, width, channels) or (n, width) for grey) below the last ones."""
        rows = np.asarray(rows)
        if rows.dtype != np.uint8:
            raise ValueError(f"{self.path}: PNG rows must be uint8, got {rows.dtype}")
        expected = (self.width, self.channels) if self.channels > 1 else (self.width,)
        if rows.ndim != len(expected) + 1 or rows.shape[1:] != expected:
            raise ValueError(f"{self.path}: rows of shape {rows.shape} do not fit a {self.width}-wide "
                             f"{self.channels}-channel PNG")
        if self.rows_written + len(rows) > self.height:
            raise ValueError(f"{self.path}: {self.rows_written + len(rows)} rows written to a PNG "
                             f"{self.height} rows high")
        if len(rows) == 0:
            return
        flat = np.ascontiguousarray(rows).reshape(len(rows), -1)
        filtered = self._filter(flat, self._above, self.channels)
        raw = np.empty((len(rows), flat.shape[1] + 1), np.uint8)
        raw[:, 0] = self._filter_byte
        raw[:, 1:] = filtered
        self._above = flat[-1].copy()
        self._write_idat(self._zip.compress(raw.data))
        self.rows_written += len(rows)

    def _write_idat(self, data: bytes) -> None:
        for start in range(0, len(data), _MAX_CHUNK):
            self._file.write(_chunk(b"IDAT", data[start:start + _MAX_CHUNK]))

    def close(self) -> Path:
        """Finish the file (last IDAT, IEND) and move it to its final name; complain if rows are missing."""
        if self._file.closed:
            return self.path
        if self.rows_written != self.height:
            self.abort()
            raise ValueError(f"{self.path}: only {self.rows_written} of {self.height} rows were written; "
                             "PNG not finished")
        self._write_idat(self._zip.flush())
        self._file.write(_chunk(b"IEND", b""))
        return self._file.commit()

    def abort(self) -> None:
        """Drop the unfinished file."""
        self._file.abort()

    def __enter__(self) -> "PngStreamWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_png(path: str | Path, pixels: np.ndarray, band_rows: int = 256, **options) -> Path:
    """Write a whole uint8 (H, W, 3) or (H, W) array with :class:`PngStreamWriter`."""
    pixels = np.asarray(pixels)
    channels = pixels.shape[2] if pixels.ndim == 3 else 1
    with PngStreamWriter(path, pixels.shape[1], pixels.shape[0], channels=channels, **options) as png:
        for y in range(0, pixels.shape[0], band_rows):
            png.write_rows(pixels[y:y + band_rows])
    return Path(path)
