"""Where rendered strips go, chosen by the output suffix: one writer per format, registered by name.

Every writer consumes an iterator of uint8 RGB strips (top to bottom) and writes to a temporary
file beside its target (``bcedge.atomic``), renamed on success, so an unfinished file never carries
the final name.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from bcedge.atomic import atomic_path, atomic_write_bytes
from bcedge.data.pngstream import PngStreamWriter
from bcedge.registry import Registry

Strips = Iterator[np.ndarray]
IN_MEMORY_MAX_PIXELS = 8192 * 8192  # formats that need the whole image at once (JPEG, in-memory result)


@dataclass(frozen=True)
class SmearFormat:
    name: str
    suffixes: tuple[str, ...]
    write: Callable[[Path, int, int, Strips, dict], None]  # (path, width, height, strips, options)
    options: tuple[str, ...] = ()                          # option names the writer takes
    max_pixels: int | None = None                          # None: any size (streamed)

    def check(self, path: Path, width: int, height: int, options: dict) -> None:
        """Refuse, before any rendering, sizes or options this format cannot take."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(f"{path}: {self.name} output takes options {list(self.options)}, not {unknown}")
        if self.max_pixels is not None and width * height > self.max_pixels:
            raise ValueError(
                f"{path}: {self.name} needs the whole {width}x{height} image in memory; it is limited to "
                f"{self.max_pixels} pixels (8192x8192). Write .png or .tif for larger smears")


SMEAR_FORMATS: Registry[SmearFormat] = Registry("smear file suffix")  # by suffix: ".png", ".tif", ...


def register_smear_format(fmt: SmearFormat) -> SmearFormat:
    for suffix in fmt.suffixes:
        SMEAR_FORMATS.add(suffix, fmt)
    return fmt


def format_for(path: Path) -> SmearFormat:
    try:
        return SMEAR_FORMATS[Path(path).suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: cannot write smears as {Path(path).suffix or 'no suffix'!r}; "
                         f"use one of {sorted(SMEAR_FORMATS)}") from None


def _write_png(path: Path, width: int, height: int, strips: Strips, options: dict) -> None:
    # zlib level 1 with the Sub filter: 5x faster than level 6 on noisy smears, files ~5 % larger
    options = {"compress_level": 1, "filter": "sub", **options}
    with PngStreamWriter(path, width, height, **options) as png:
        for strip in strips:
            png.write_rows(strip)


def _tiles(strips: Strips, width: int, tile: int) -> Iterator[np.ndarray]:
    """Regroup strips of any height into (tile x tile) tiles in row-major order (edge tiles smaller)."""
    pending: list[np.ndarray] = []
    rows = 0

    def emit(band: np.ndarray):
        for x in range(0, width, tile):
            yield band[:, x:x + tile]

    for strip in strips:
        pending.append(strip)
        rows += len(strip)
        while rows >= tile:
            band = np.concatenate(pending) if len(pending) > 1 else pending[0]
            yield from emit(band[:tile])
            pending, rows = [band[tile:]], rows - tile
    if rows:
        yield from emit(np.concatenate(pending))


def _write_tiff(path: Path, width: int, height: int, strips: Strips, options: dict) -> None:
    import tifffile

    tile = int(options.get("tile", 256))
    compression = options.get("compression", "zlib")
    big = width * height * 3 > 2**32 - 2**26  # classic TIFF offsets are 32-bit: BigTIFF past ~4 GB
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, _tiles(strips, width, tile), shape=(height, width, 3), dtype=np.uint8,
                         tile=(tile, tile), photometric="rgb", compression=compression,
                         predictor=bool(compression), bigtiff=big, metadata=None)


def _write_jpeg(path: Path, width: int, height: int, strips: Strips, options: dict) -> None:
    import cv2

    pixels = collect(strips, width, height)
    ok, data = cv2.imencode(".jpg", pixels[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(options.get("quality", 95))])
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode the image as JPEG")
    atomic_write_bytes(path, data.tobytes(), durable=False)


def collect(strips: Strips, width: int, height: int) -> np.ndarray:
    """All strips in one (height, width, 3) array."""
    out = np.empty((height, width, 3), np.uint8)
    y = 0
    for strip in strips:
        out[y:y + len(strip)] = strip
        y += len(strip)
    if y != height:
        raise ValueError(f"renderer produced {y} rows, expected {height}")
    return out


register_smear_format(SmearFormat("PNG", (".png",), _write_png, options=("compress_level", "filter")))
register_smear_format(SmearFormat("TIFF", (".tif", ".tiff"), _write_tiff, options=("tile", "compression")))
register_smear_format(SmearFormat("JPEG", (".jpg", ".jpeg"), _write_jpeg, options=("quality",),
                            max_pixels=IN_MEMORY_MAX_PIXELS))
