"""Streaming PNG reader: rows are inflated and unfiltered on demand, one band at a time.

Non-interlaced PNGs of any size, bit depth (1-16) and colour type stream in constant memory;
interlaced (Adam7) files fall back to a whole decode with the size cap. Filters None/Sub/Up are
numpy-vectorised per row; Average and Paeth depend on the byte to the left, so they run in numba.
Reading forward (bands in order, overlapping by a few rows) never re-inflates; a band above the
last one restarts the stream from the first IDAT chunk.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numba
import numpy as np

from bcedge.imageio import ImageReadError
from bcedge.runtime.sources import ImageSource

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
READ_SIZE = 1 << 20  # compressed bytes read at a time
BAND_ROWS = 256  # rows inflated per batch while skipping


class PngHeader(NamedTuple):
    width: int
    height: int
    bit_depth: int
    color_type: int
    interlaced: bool
    palette: np.ndarray | None  # (256, 3) uint8 lookup for colour type 3
    idat_offset: int  # file offset of the first IDAT chunk's length field

    @property
    def row_bytes(self) -> int:
        return (self.width * CHANNELS[self.color_type] * self.bit_depth + 7) // 8

    @property
    def filter_unit(self) -> int:
        return max(1, CHANNELS[self.color_type] * self.bit_depth // 8)


def read_header(f: BinaryIO, name: str) -> PngHeader:
    """Parse the chunks before the first IDAT (IHDR, PLTE); leaves ``f`` anywhere."""
    if f.read(8) != SIGNATURE:
        raise ImageReadError(f"{name}: not a PNG file (bad signature)")
    ihdr, palette = None, None
    while True:
        offset = f.tell()
        head = f.read(8)
        if len(head) < 8:
            raise ImageReadError(f"{name}: PNG ends before its image data (truncated or still being written)")
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IDAT":
            break
        data = f.read(length)
        if len(data) < length or len(f.read(4)) < 4:
            raise ImageReadError(f"{name}: PNG ends inside the {kind.decode(errors='replace')} chunk (truncated)")
        if kind == b"IHDR":
            if length != 13:
                raise ImageReadError(f"{name}: PNG header chunk has length {length}, expected 13")
            ihdr = struct.unpack(">IIBBBBB", data)
        elif kind == b"PLTE":
            entries = np.frombuffer(data[: length - length % 3], np.uint8).reshape(-1, 3)
            palette = np.zeros((256, 3), np.uint8)
            palette[: len(entries)] = entries[:256]
        elif kind == b"IEND":
            raise ImageReadError(f"{name}: PNG has no image data (no IDAT chunk)")
    if ihdr is None:
        raise ImageReadError(f"{name}: PNG lacks its IHDR header chunk")
    width, height, depth, ctype, compression, filter_method, interlace = ihdr
    if ctype not in CHANNELS or depth not in DEPTHS[ctype]:
        raise ImageReadError(f"{name}: invalid PNG colour type {ctype} with bit depth {depth}")
    if compression != 0 or filter_method != 0 or interlace not in (0, 1) or width == 0 or height == 0:
        raise ImageReadError(f"{name}: invalid PNG header ({width}x{height}, compression {compression}, "
                             f"filter method {filter_method}, interlace {interlace})")
    if ctype == 3 and palette is None:
        raise ImageReadError(f"{name}: palette PNG without a PLTE chunk")
    return PngHeader(width, height, depth, ctype, interlace == 1, palette, offset)


def open_png(path: Path, max_pixels: int) -> ImageSource:
    with open(path, "rb") as f:
        header = read_header(f, str(path))
    if header.interlaced:  # Adam7 spreads every row over 7 passes: no streaming
        from bcedge.runtime.readers.whole import WholeImageSource

        return WholeImageSource(path, header.width, header.height, max_pixels, "interlaced PNG")
    return PngSource(path, header)


class PngSource(ImageSource):
    def __init__(self, path: Path, header: PngHeader) -> None:
        super().__init__()
        self.path, self.name, self.header = path, str(path), header
        self.width, self.height = header.width, header.height
        self._file: BinaryIO | None = None
        self._cache_y0, self._cache = 0, None  # pixels of the last band returned
        self._restart()

    def _restart(self) -> None:
        if self._file is None:
            self._file = open(self.path, "rb")
        self._file.seek(self.header.idat_offset)
        self._inflater = zlib.decompressobj()
        self._chunk_left = -1  # bytes of the current IDAT chunk still unread; -1: at a chunk header
        self._chunk_crc = 0
        self._idat_done = False
        self._pending = bytearray()
        self._next_row = 0
        self._prev = np.zeros(self.header.row_bytes, np.uint8)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _read_rows(self, y0: int, y1: int) -> np.ndarray:
        parts = []
        cache, start = self._cache, y0
        if cache is not None and self._cache_y0 <= y0 < self._cache_y0 + len(cache):
            parts.append(cache[y0 - self._cache_y0: y1 - self._cache_y0])
            if y1 <= self._cache_y0 + len(cache):
                return parts[0]  # wholly inside the last band: keep that band cached
            y0 = self._cache_y0 + len(cache)
        if y0 < self._next_row:
            self._restart()
        while self._next_row < y0:  # skip rows above the band
            self._decode(min(BAND_ROWS, y0 - self._next_row))
        parts.append(self._decode(y1 - y0))
        band = parts[0] if len(parts) == 1 else np.concatenate(parts)
        band.flags.writeable = False  # shared with the cache: the next overlapping band reuses it
        self._cache_y0, self._cache = start, band
        return band

    def _decode(self, count: int) -> np.ndarray:
        """The next ``count`` rows as pixels."""
        h = self.header
        stride = h.row_bytes + 1
        raw = np.frombuffer(self._inflate(count * stride), np.uint8).reshape(count, stride)
        rows = np.empty((count, h.row_bytes), np.uint8)
        prev, unit = self._prev, h.filter_unit
        for r in range(count):
            kind = int(raw[r, 0])
            if kind not in UNFILTER:
                raise ImageReadError(f"{self.name}: row {self._next_row + r} has invalid PNG filter type {kind} "
                                     "(corrupt file)")
            rows[r] = UNFILTER[kind](raw[r, 1:], prev, unit)
            prev = rows[r]
        self._prev = rows[-1].copy()
        self._next_row += count
        return _to_pixels(rows, h)

    def _inflate(self, size: int) -> bytes:
        """Exactly ``size`` more bytes of the inflated stream."""
        while len(self._pending) < size:
            want = max(size - len(self._pending), 1 << 16)
            if self._inflater.unconsumed_tail:
                data = self._inflater.unconsumed_tail
            elif self._inflater.eof or self._idat_done:
                rest = b"" if self._inflater.eof else self._inflater.flush()  # output held back by max_length
                if rest:
                    self._pending += rest
                    continue
                raise ImageReadError(f"{self.name}: PNG image data ends at row {self._next_row} of {self.height} "
                                     "(truncated or corrupt)")
            else:
                data = self._read_idat()
                if not data:
                    continue
            try:
                self._pending += self._inflater.decompress(data, want)
            except zlib.error as exc:
                raise ImageReadError(f"{self.name}: corrupt PNG image data near row {self._next_row}: {exc}") from None
        out = bytes(self._pending[:size])
        del self._pending[:size]
        return out

    def _read_idat(self) -> bytes:
        """The next piece of compressed data, crossing IDAT chunk boundaries; b'' at a chunk end."""
        f = self._file
        if self._chunk_left == 0:  # end of a chunk: check its CRC
            crc = f.read(4)
            if len(crc) < 4:
                raise self._truncated()
            if struct.unpack(">I", crc)[0] != self._chunk_crc & 0xFFFFFFFF:
                raise ImageReadError(f"{self.name}: PNG chunk checksum mismatch near row {self._next_row} (corrupt)")
            self._chunk_left = -1
            return b""
        if self._chunk_left < 0:
            head = f.read(8)
            if len(head) < 8:
                raise self._truncated()
            length, kind = struct.unpack(">I4s", head)
            if kind != b"IDAT":
                self._idat_done = True
                return b""
            self._chunk_left, self._chunk_crc = length, zlib.crc32(kind)
            return b""
        data = f.read(min(self._chunk_left, READ_SIZE))
        if not data:
            raise self._truncated()
        self._chunk_left -= len(data)
        self._chunk_crc = zlib.crc32(data, self._chunk_crc)
        return data

    def _truncated(self) -> ImageReadError:
        return ImageReadError(f"{self.name}: PNG ends at row {self._next_row} of {self.height} "
                              "(truncated, or still being written)")


def _to_pixels(rows: np.ndarray, h: PngHeader) -> np.ndarray:
    """Unfiltered row bytes -> (rows, width[, channels]) uint8 or uint16 pixels."""
    count, channels = len(rows), CHANNELS[h.color_type]
    if h.bit_depth == 16:
        pixels = rows.view(">u2").astype(np.uint16).reshape(count, h.width, channels)
    elif h.bit_depth == 8:
        pixels = rows.reshape(count, h.width, channels)
    else:  # 1, 2 or 4 bits: one sample per pixel (grey or palette index)
        position = np.arange(h.width) * h.bit_depth
        shift = (8 - h.bit_depth - position % 8).astype(np.uint8)
        pixels = (rows[:, position // 8] >> shift) & np.uint8((1 << h.bit_depth) - 1)
        if h.color_type == 0:
            pixels = pixels * np.uint8(255 // ((1 << h.bit_depth) - 1))
        pixels = pixels[:, :, None]
    if h.color_type == 3:
        return h.palette[pixels[:, :, 0]]
    return pixels


def _none(row: np.ndarray, prev: np.ndarray, unit: int) -> np.ndarray:
    return row


def _sub(row: np.ndarray, prev: np.ndarray, unit: int) -> np.ndarray:
    return np.cumsum(row.reshape(-1, unit), axis=0, dtype=np.uint8).reshape(-1)


def _up(row: np.ndarray, prev: np.ndarray, unit: int) -> np.ndarray:
    return row + prev


@numba.njit(cache=True, nogil=True)
def _average(row, prev, unit):
    out = np.empty_like(row)
    for i in range(row.shape[0]):
        left = np.int32(out[i - unit]) if i >= unit else np.int32(0)
        out[i] = (np.int32(row[i]) + ((left + np.int32(prev[i])) >> 1)) & 0xFF
    return out


@numba.njit(cache=True, nogil=True)
def _paeth(row, prev, unit):
    out = np.empty_like(row)
    for i in range(row.shape[0]):
        a = np.int32(out[i - unit]) if i >= unit else np.int32(0)
        b = np.int32(prev[i])
        c = np.int32(prev[i - unit]) if i >= unit else np.int32(0)
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
        out[i] = (np.int32(row[i]) + pred) & 0xFF
    return out


UNFILTER = {0: _none, 1: _sub, 2: _up, 3: _average, 4: _paeth}  # PNG filter type -> row decoder
