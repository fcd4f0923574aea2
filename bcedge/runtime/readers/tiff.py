"""TIFF / BigTIFF read by bands: only the strips or tiles a band touches are read and decoded.

Uses tifffile's per-segment decoder (``TiffPage.decode``) on bytes read from the file, so no zarr
or whole-page read is needed. Uncompressed strips are read row by row (a single-strip 20k x 20k
file costs one band of memory). Decoded segments of the last band are kept, so bands that overlap
by a few rows do not decode their shared tiles twice. The first page (full resolution) is read.

tifffile decodes LZW, JPEG and other common compressions only with the optional ``imagecodecs`` package;
without it such a file (OpenCV writes LZW by default) is decoded whole by OpenCV, under the whole-decode cap.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bcedge.imageio import ImageReadError
from bcedge.runtime.sources import ImageSource, ImageTooLarge


class _CodecMissing(Exception):
    """tifffile cannot decode this compression here (no ``imagecodecs``)."""

    def __init__(self, width: int, height: int, compression: str) -> None:
        super().__init__(compression)
        self.width, self.height, self.compression = width, height, compression


def open_tiff(path: Path, max_pixels: int) -> ImageSource:
    try:
        return TiffSource(path, max_pixels)
    except _CodecMissing as missing:
        from bcedge.runtime.readers.whole import WholeImageSource

        kind = f"{missing.compression}-compressed TIFF (with the imagecodecs package it is read by strips)"
        return WholeImageSource(path, missing.width, missing.height, max_pixels, kind)


MAX_PAGES_LOOKED_AT = 1000


def stack_depth(tif, first) -> int:
    """How many of the file's pages are images the size of the first: a stack of fields or focal planes. A slide
    scan's pyramid (smaller pages: the same image at lower resolutions) is one image."""
    if len(tif.pages) == 1:
        return 1
    size = (first.imagewidth, first.imagelength)
    pages = (tif.pages[index] for index in range(min(len(tif.pages), MAX_PAGES_LOOKED_AT)))
    return sum(1 for page in pages if (page.imagewidth, page.imagelength) == size)


class TiffSource(ImageSource):
    def __init__(self, path: Path, max_pixels: int) -> None:
        super().__init__()
        import tifffile

        self.path, self.name = path, str(path)
        try:
            self._tif = tifffile.TiffFile(path)
            page = self._tif.pages.first
        except Exception as exc:  # tifffile raises several types for corrupt or truncated files
            raise ImageReadError(f"{path}: not a readable TIFF ({type(exc).__name__}: {exc})") from None
        try:
            self._setup(page, max_pixels)
            self.pages = stack_depth(self._tif, page)
        except Exception:
            self._tif.close()
            raise

    def _setup(self, page, max_pixels: int) -> None:
        from tifffile import TIFF

        self.page = page
        self.width, self.height = int(page.imagewidth), int(page.imagelength)
        if page.compression != 1 and page.compression not in TIFF.DECOMPRESSORS:
            raise _CodecMissing(self.width, self.height, page.compression.name)
        if page.imagedepth != 1:
            raise ImageReadError(f"{self.path}: volumetric TIFF (depth {page.imagedepth}) is not an image")
        if page.dtype not in (np.uint8, np.uint16):
            raise ImageReadError(f"{self.path}: unsupported TIFF pixel type {page.dtype} "
                                 f"({page.bitspersample}-bit); expected 8 or 16-bit unsigned")
        self._planes = int(page.samplesperpixel) if page.planarconfig == 2 else 1
        self._samples = int(page.samplesperpixel)
        self._seg_h = int(page.tilelength if page.is_tiled else min(page.rowsperstrip, self.height))
        self._seg_w = int(page.tilewidth if page.is_tiled else self.width)
        self._across = math.ceil(self.width / self._seg_w)
        self._down = math.ceil(self.height / self._seg_h)
        if len(page.dataoffsets) != self._planes * self._across * self._down:
            raise ImageReadError(f"{self.path}: TIFF has {len(page.dataoffsets)} strips/tiles, expected "
                                 f"{self._planes * self._across * self._down} (corrupt or unsupported layout)")
        if self._seg_h * self._seg_w > max_pixels:
            raise ImageTooLarge(f"{self.path}: one TIFF {'tile' if page.is_tiled else 'strip'} holds "
                                f"{self._seg_w}x{self._seg_h} pixels, above the decode limit of {max_pixels} "
                                "pixels; re-save it tiled (e.g. 512x512 tiles)")
        self._dtype = np.dtype(self._tif.byteorder + page.dtype.char)
        self._direct = (page.compression == 1 and not page.is_tiled and self._planes == 1
                        and page.bitspersample in (8, 16) and page.predictor == 1 and not page.is_subsampled)
        self._cache: dict[int, np.ndarray | None] = {}
        self._lut = None
        if page.photometric == 3 and page.colormap is not None:  # palette: indices -> RGB
            self._lut = np.ascontiguousarray(page.colormap.T)

    def close(self) -> None:
        self._tif.close()

    def _read_rows(self, y0: int, y1: int) -> np.ndarray:
        out = np.zeros((y1 - y0, self.width, self._samples), self.page.dtype)
        rows = range(y0 // self._seg_h, (y1 - 1) // self._seg_h + 1)
        if self._direct:
            for k in rows:
                self._read_strip_rows(k, y0, y1, out)
        else:
            cache: dict[int, np.ndarray | None] = {}
            for plane in range(self._planes):
                for r in rows:
                    for c in range(self._across):
                        index = (plane * self._down + r) * self._across + c
                        cache[index] = self._cache[index] if index in self._cache else self._decode(index)
                        self._place(cache[index], plane, r, c, y0, y1, out)
            self._cache = cache
        if self._lut is not None:
            return self._lut[out[:, :, 0]]
        return out

    def _read_bytes(self, index: int, start: int = 0, size: int | None = None) -> bytes | None:
        offset, count = int(self.page.dataoffsets[index]), int(self.page.databytecounts[index])
        if count == 0 or offset == 0:
            return None  # sparse file: an empty segment
        size = count - start if size is None else size
        fh = self._tif.filehandle
        with fh.lock:
            fh.seek(offset + start)
            data = fh.read(size)
        if len(data) < size:
            raise ImageReadError(f"{self.path}: TIFF data of strip/tile {index} is cut short "
                                 "(truncated, or still being written)")
        return data

    def _read_strip_rows(self, k: int, y0: int, y1: int, out: np.ndarray) -> None:
        """Uncompressed strip k: read only the rows of [y0, y1) it holds."""
        top = k * self._seg_h
        r0, r1 = max(y0, top), min(y1, top + self._seg_h, self.height)
        row_bytes = self.width * self._samples * self._dtype.itemsize
        data = self._read_bytes(k, (r0 - top) * row_bytes, (r1 - r0) * row_bytes)
        if data is not None:
            out[r0 - y0:r1 - y0] = np.frombuffer(data, self._dtype).reshape(r1 - r0, self.width, self._samples)

    def _decode(self, index: int) -> np.ndarray | None:
        data = self._read_bytes(index)
        if data is None:
            return None
        try:
            segment, _, _ = self.page.decode(data, index, jpegtables=self.page.jpegtables)
        except Exception as exc:
            raise ImageReadError(f"{self.path}: cannot decode TIFF strip/tile {index} (compression "
                                 f"{self.page.compression!r}): {type(exc).__name__}: {exc}") from None
        return segment

    def _place(self, segment, plane: int, r: int, c: int, y0: int, y1: int, out: np.ndarray) -> None:
        if segment is None:
            return
        segment = segment[0]  # (length, width, contiguous samples)
        top, left = r * self._seg_h, c * self._seg_w
        r0, r1 = max(y0, top), min(y1, top + segment.shape[0])
        width = min(segment.shape[1], self.width - left)
        s0 = plane if self._planes > 1 else 0
        out[r0 - y0:r1 - y0, left:left + width, s0:s0 + segment.shape[2]] = segment[r0 - top:r1 - top, :width]
