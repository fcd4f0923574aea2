"""The streaming PNG writer: decodes to the same pixels with OpenCV and PIL, never leaves a half file."""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from bcedge.atomic import is_temp
from bcedge.data.pngstream import PNG_FILTERS, PngStreamWriter, write_png


def _image(h=41, w=57, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[10:25] = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]  # smooth part: filters matter
    return img


def _chunks(data: bytes):
    pos, out = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        out.append((kind, body))
        pos += 12 + length
    return out


@pytest.mark.parametrize("name", sorted(PNG_FILTERS))
def test_every_filter_decodes_to_the_same_pixels(tmp_path, name):
    img = _image()
    path = write_png(tmp_path / "a.png", img, band_rows=6, filter=name)
    assert np.array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:, :, ::-1], img)
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), img)


def test_greyscale_and_one_band(tmp_path):
    grey = _image()[:, :, 0]
    path = write_png(tmp_path / "g.png", grey, band_rows=1000, filter="paeth")
    assert np.array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), grey)


def test_layout_is_ihdr_idat_per_band_iend(tmp_path):
    img = _image(h=40, w=3000)  # random bands of 90 kB: zlib has output for each
    path = write_png(tmp_path / "a.png", img, band_rows=10, compress_level=1)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    kinds = [k for k, _ in _chunks(data)]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and set(kinds[1:-1]) == {b"IDAT"}
    assert kinds.count(b"IDAT") >= 4
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", _chunks(data)[0][1])
    assert (width, height, depth, colour, interlace) == (3000, 40, 8, 2, 0)


def test_missing_rows_leave_no_file(tmp_path):
    path = tmp_path / "short.png"
    png = PngStreamWriter(path, 10, 5)
    png.write_rows(np.zeros((3, 10, 3), np.uint8))
    assert [is_temp(p) for p in tmp_path.iterdir()] == [True] and not path.exists()
    with pytest.raises(ValueError, match="only 3 of 5 rows"):
        png.close()
    assert list(tmp_path.iterdir()) == []


def test_an_error_inside_the_with_block_removes_the_partial_file(tmp_path):
    with pytest.raises(RuntimeError):
        with PngStreamWriter(tmp_path / "x.png", 4, 4) as png:
            png.write_rows(np.zeros((2, 4, 3), np.uint8))
            raise RuntimeError("renderer failed")
    assert list(tmp_path.iterdir()) == []


def test_bad_rows_are_refused_with_the_file_named(tmp_path):
    png = PngStreamWriter(tmp_path / "bad.png", 8, 4)
    with pytest.raises(ValueError, match="bad.png: PNG rows must be uint8"):
        png.write_rows(np.zeros((2, 8, 3), np.float32))
    with pytest.raises(ValueError, match="do not fit"):
        png.write_rows(np.zeros((2, 9, 3), np.uint8))
    png.write_rows(np.zeros((4, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="5 rows written to a PNG 4 rows high"):
        png.write_rows(np.zeros((1, 8, 3), np.uint8))
    png.close()
    assert cv2.imread(str(tmp_path / "bad.png")).shape == (4, 8, 3)
    with pytest.raises(ValueError, match="unknown PNG filter"):
        PngStreamWriter(tmp_path / "f.png", 8, 4, filter="avg")
