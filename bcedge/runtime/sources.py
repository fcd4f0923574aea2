"""Image sources read by bands of rows, so a 20k x 20k smear is never decoded whole.

``open_image(path)`` sniffs the file's first bytes and opens the reader registered for that format:

| format | reader | memory |
|---|---|---|
| PNG (non-interlaced) | streaming decoder: zlib + per-row unfiltering | one band of rows |
| TIFF / BigTIFF | only the strips or tiles a band touches (uncompressed strips: only its rows) | one band |
| PNG (interlaced), JPEG, BMP, WebP | whole decode with OpenCV, refused above ``max_pixels`` | whole image |

``max_pixels`` defaults to ``DEFAULT_MAX_DECODE_PIXELS`` = 2**28 (268 megapixels, about 16k x 16k):
a whole decode peaks near 6 bytes per pixel (OpenCV's BGR buffer plus the RGB copy), 1.6 GB at the
limit, what an 8 GB edge box can spare. Set ``BCEDGE_MAX_DECODE_PIXELS`` or pass ``max_pixels``
to change it; a counter's pixel budget, when the user gives one (``--max-pixels``), raises it too
(``bcedge.runtime.frames.decode_cap``). OpenCV itself refuses more than 2**30. Larger smears should come as
tiled TIFF or non-interlaced PNG, which stream at any size.

Every source returns RGB uint8 ``(rows, width, 3)`` through ``bcedge.imageio.to_rgb``; every error
names the file. A new format is a reader module plus one ``register_source_format`` line.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from bcedge.imageio import ImageReadError, colour_samples, significant_bits, to_rgb
from bcedge.registry import Registry, load_target
from bcedge.runtime.tiling import Tile, TileGrid

DEFAULT_MAX_DECODE_PIXELS = 2**28
OPENCV_MAX_PIXELS = 2**30   # OpenCV refuses to decode more (its CV_IO_MAX_IMAGE_PIXELS)
SAMPLE_ROWS = 8   # rows read to find a 16-bit image's significant bits (cheap on strips, tiles and whole images)


class ImageTooLarge(ImageReadError):
    """The image would have to be decoded whole and has more pixels than allowed."""


def max_decode_pixels(max_pixels: int | None = None) -> int:
    """The whole-decode pixel cap: the argument, else ``$BCEDGE_MAX_DECODE_PIXELS``, else the default."""
    if max_pixels is not None:
        return int(max_pixels)
    env = os.environ.get("BCEDGE_MAX_DECODE_PIXELS")
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise ValueError(f"BCEDGE_MAX_DECODE_PIXELS={env!r} is not a number of pixels") from None
    return DEFAULT_MAX_DECODE_PIXELS


class ImageSource(ABC):
    """An image whose rows can be read in bands. Subclasses implement ``_read_rows``."""

    name: str = "image"
    width: int = 0
    height: int = 0
    pages: int = 1   # images of this size the file holds (a TIFF stack); the first is read

    def __init__(self) -> None:
        self.note: str | None = None  # what was converted to reach RGB uint8 (16-bit, greyscale, alpha)
        self._bits: int | None = None  # a 16-bit image's significant bits, found once (``_sampled_max``)

    def read_rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0:y1`` as RGB uint8 ``(y1 - y0, width, 3)``.

        The array may share memory with the source (a cached band, the caller's frame) and may be
        read-only: copy it before changing it in place.
        """
        if not (0 <= y0 < y1 <= self.height):
            raise ValueError(f"{self.name}: rows {y0}:{y1} are outside the image (height {self.height})")
        pixels = self._decoded_rows(int(y0), int(y1))
        if pixels.dtype == np.uint16 and self._bits is None:
            self._bits = significant_bits(self._sampled_max())
        rgb, note = to_rgb(np.ascontiguousarray(pixels), self.name, bits=self._bits)
        self.note = self.note or note
        if rgb.shape[:2] != (y1 - y0, self.width):
            raise ImageReadError(f"{self.name}: decoded rows {y0}:{y1} have shape {rgb.shape}, "
                                 f"expected {(y1 - y0, self.width)}")
        return rgb

    def read_all(self) -> np.ndarray:
        return self.read_rows(0, self.height)

    def _decoded_rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows as decoded: grey, grey + alpha as grey, RGB, RGBA (samples beyond RGBA dropped)."""
        pixels = self._read_rows(y0, y1)
        if pixels.ndim == 3 and pixels.shape[2] == 2:  # grey + alpha
            return pixels[:, :, :1]
        if pixels.ndim == 3 and pixels.shape[2] > 4:  # extra samples beyond RGBA
            return pixels[:, :, :3]
        return pixels

    def _sampled_max(self) -> int:
        """The largest colour sample of rows spread over the image: a 16-bit image's scale, found once for all bands."""
        rows = sorted({int((i + 0.5) * self.height / SAMPLE_ROWS) for i in range(SAMPLE_ROWS)})
        return max(int(colour_samples(self._decoded_rows(y, y + 1)).max(initial=0)) for y in rows)

    @abstractmethod
    def _read_rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows as uint8/uint16, (rows, width) or (rows, width, channels)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "ImageSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.width}x{self.height})"


class ArraySource(ImageSource):
    """An image already in memory (a camera frame, a test image): RGB, RGBA, grey, 8 or 16 bit."""

    def __init__(self, pixels: np.ndarray, name: str = "<array>") -> None:
        super().__init__()
        pixels = np.asarray(pixels)
        if pixels.ndim not in (2, 3) or pixels.shape[0] == 0 or pixels.shape[1] == 0:
            raise ImageReadError(f"{name}: expected an image array (H, W) or (H, W, C), got shape {pixels.shape}")
        self.pixels, self.name = pixels, name
        self.height, self.width = int(pixels.shape[0]), int(pixels.shape[1])

    def _read_rows(self, y0: int, y1: int) -> np.ndarray:
        return self.pixels[y0:y1]


@dataclass(frozen=True)
class SourceFormat:
    name: str
    magic: tuple[bytes, ...]
    opener: str  # "module:function" taking (path: Path, max_pixels: int) -> ImageSource
    suffixes: tuple[str, ...] = ()


SOURCE_FORMATS: Registry[SourceFormat] = Registry("image format")


def register_source_format(name: str, magic: tuple[bytes, ...], opener: str, suffixes: tuple[str, ...] = ()) -> None:
    SOURCE_FORMATS.add(name, SourceFormat(name, magic, opener, suffixes))


register_source_format("png", (b"\x89PNG\r\n\x1a\n",), "bcedge.runtime.readers.png:open_png", (".png",))
register_source_format("tiff", (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), "bcedge.runtime.readers.tiff:open_tiff",
                (".tif", ".tiff"))
register_source_format("jpeg", (b"\xff\xd8\xff",), "bcedge.runtime.readers.whole:open_jpeg", (".jpg", ".jpeg"))
register_source_format("bmp", (b"BM",), "bcedge.runtime.readers.whole:open_bmp", (".bmp",))
register_source_format("webp", (b"RIFF",), "bcedge.runtime.readers.whole:open_webp", (".webp",))
# what phones save by default, which OpenCV cannot decode: their ISO-BMFF brands (bytes 8-12, after "ftyp")
PHONE_FORMATS = {"a HEIC photo": (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"),
                 "a HEIF photo": (b"mif1", b"msf1"), "an AVIF image": (b"avif", b"avis")}
UNREADABLE = {b"ftyp" + brand: what for what, brands in PHONE_FORMATS.items() for brand in brands}


def _format_of(head: bytes) -> SourceFormat | None:
    return next((fmt for fmt in SOURCE_FORMATS.values() if any(head.startswith(m) for m in fmt.magic)), None)


def sniff_format(path: str | Path) -> SourceFormat:
    """The registered format whose magic bytes start the file."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise ImageReadError(f"{path}: file is empty (zero bytes)")
    fmt = _format_of(head)
    if fmt is not None:
        return fmt
    claimed = [f.name.upper() for f in SOURCE_FORMATS.values() if path.suffix.lower() in f.suffixes]
    supported = ", ".join(f.name.upper() for f in SOURCE_FORMATS.values())
    if head[4:12] in UNREADABLE:
        raise ImageReadError(f"{path}: {UNREADABLE[head[4:12]]}, which bcedge cannot read; save or export it as JPEG "
                             f"or PNG (a phone's camera settings offer a 'most compatible' format). Read: {supported}")
    what = f"named {path.suffix} but is not a {claimed[0]} file (corrupt or mislabelled)" if claimed else \
        f"not a supported image ({supported})"
    raise ImageReadError(f"{path}: {what}; it starts with bytes {head[:8].hex(' ')}")


def holds_image(path: str | Path) -> bool:
    """Whether a file starts like an image bcedge reads (or a phone photo it names), whatever its name: for
    folders, where a file without a known suffix (``.jfif``, none at all) is still counted."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return _format_of(head) is not None or head[4:12] in UNREADABLE


def open_image(path: str | Path, max_pixels: int | None = None) -> ImageSource:
    """Open an image file for reading by rows; the format comes from its first bytes, not its name."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such image file")
    if not path.is_file():
        raise ImageReadError(f"{path}: not a file")
    fmt = sniff_format(path)
    opener: Callable[[Path, int], ImageSource] = load_target(fmt.opener)
    return opener(path, max_decode_pixels(max_pixels))


def iter_tiles(source: ImageSource, grid: TileGrid, pad_value: int = 0) -> Iterator[tuple[Tile, np.ndarray]]:
    """Tiles of ``grid`` with their pixels (tile_h, tile_w, 3), decoding one strip of rows at a time.

    Tiles of an image smaller than the tile are padded on the right and bottom with ``pad_value``.
    """
    if (grid.image_w, grid.image_h) != (source.width, source.height):
        raise ValueError(f"{source.name}: image is {source.width}x{source.height} but the tile grid was "
                         f"planned for {grid.image_w}x{grid.image_h}")
    for strip in grid.strips():
        rows = source.read_rows(strip.y0, strip.y1)
        for tile in strip.tiles:
            pixels = rows[:, tile.x0:tile.x1]
            if tile.pad_x or tile.pad_y:
                pixels = np.pad(pixels, ((0, tile.pad_y), (0, tile.pad_x), (0, 0)), constant_values=pad_value)
            yield tile, pixels
