"""The streaming PNG reader gives the same pixels as OpenCV, for every filter type, depth and colour type."""
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from bcedge.imageio import ImageReadError, read_image
from bcedge.runtime.readers.png import PngSource
from bcedge.runtime.readers.whole import WholeImageSource
from bcedge.runtime.sources import ImageTooLarge, open_image

sys.path.insert(0, str(Path(__file__).parent))
from png_writer import encode_png  # noqa: E402

RNG = np.random.default_rng(0)
H, W = 70, 53


def _smooth_rgb(h=H, w=W, dtype=np.uint8):
    yy, xx = np.mgrid[0:h, 0:w]
    top = 65535 if dtype == np.uint16 else 255
    img = np.stack([(xx * 7 + yy) % 256, (yy * 3) % 256, (xx * yy) % 256], 2) * (top // 255)
    return (img + RNG.integers(0, 9, img.shape) * (top // 255)).clip(0, top).astype(dtype)


def _assert_streams_like_cv2(path: Path, expected_type=PngSource):
    expected = read_image(path)
    with open_image(path) as src:
        assert type(src) is expected_type
        assert (src.width, src.height) == (expected.shape[1], expected.shape[0])
        h = src.height
        np.testing.assert_array_equal(src.read_rows(0, h), expected)
        for y0, y1 in [(3, 20), (15, 41), (40, h), (0, 5), (h - 1, h), (10, 12)]:  # forward, overlap, back, cached
            np.testing.assert_array_equal(src.read_rows(y0, y1), expected[y0:y1], err_msg=f"rows {y0}:{y1}")


@pytest.mark.parametrize("flt", ["NONE", "SUB", "UP", "AVG", "PAETH"])
@pytest.mark.parametrize("level", [0, 9])
def test_cv2_written_png_each_filter(tmp_path, flt, level):
    path = tmp_path / "smear.png"
    params = [cv2.IMWRITE_PNG_FILTER, getattr(cv2, f"IMWRITE_PNG_FILTER_{flt}"), cv2.IMWRITE_PNG_COMPRESSION, level]
    assert cv2.imwrite(str(path), _smooth_rgb()[:, :, ::-1], params)
    _assert_streams_like_cv2(path)


@pytest.mark.parametrize("kind", ["grey8", "grey16", "rgb16", "rgba8", "bilevel"])
def test_cv2_written_png_other_types(tmp_path, kind):
    rgb8, rgb16 = _smooth_rgb(), _smooth_rgb(dtype=np.uint16)
    image, params = {
        "grey8": (rgb8[:, :, 0], []),
        "grey16": (rgb16[:, :, 1], []),
        "rgb16": (rgb16, []),
        "rgba8": (np.dstack([rgb8, rgb8[:, :, :1]]), []),
        "bilevel": ((rgb8[:, :, 0] > 128).astype(np.uint8) * 255, [cv2.IMWRITE_PNG_BILEVEL, 1]),
    }[kind]
    path = tmp_path / f"{kind}.png"
    assert cv2.imwrite(str(path), image, params + [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_ALL_FILTERS])
    _assert_streams_like_cv2(path)


@pytest.mark.parametrize("color_type,depth", [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16), (3, 1),
                                              (3, 2), (3, 4), (3, 8), (4, 8), (4, 16), (6, 8), (6, 16)])
def test_crafted_png_all_filters_mixed_in_tiny_chunks(tmp_path, color_type, depth):
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    pixels = RNG.integers(0, 1 << depth, (H, W, channels))
    pixels[10:30] = pixels[10:11]  # some smooth rows so Up/Average/Paeth see real predictions
    palette = RNG.integers(0, 256, (1 << min(depth, 8), 3)) if color_type == 3 else None
    path = tmp_path / "crafted.png"
    path.write_bytes(encode_png(pixels, color_type, depth, palette=palette, chunk_size=97))
    _assert_streams_like_cv2(path)


def test_interlaced_png_is_decoded_whole_and_capped(tmp_path):
    path = tmp_path / "adam7.png"
    path.write_bytes(encode_png(_smooth_rgb(), 2, 8, filters=0, interlace=True))
    _assert_streams_like_cv2(path, WholeImageSource)
    with pytest.raises(ImageTooLarge, match="adam7.png.*interlaced PNG"):
        open_image(path, max_pixels=1000)


def test_huge_png_streams_without_the_cap(tmp_path):
    path = tmp_path / "wide.png"
    pixels = np.zeros((2000, 600, 3), np.uint8)
    pixels[1500:1503] = 200
    path.write_bytes(encode_png(pixels, 2, 8, filters=1, level=9))
    with open_image(path, max_pixels=1000) as src:  # far above the whole-decode cap, still fine
        assert (src.read_rows(1499, 1504)[:, 0, 0] == [0, 200, 200, 200, 0]).all()


def test_truncated_and_corrupt_png_name_the_file(tmp_path):
    good = encode_png(_smooth_rgb(), 2, 8, chunk_size=500)
    cut = tmp_path / "partial.png"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ImageReadError, match=r"partial\.png: PNG ends at row \d+ of 70 \(truncated"):
        open_image(cut).read_all()
    bad = bytearray(good)
    bad[len(good) // 2] ^= 0xFF
    broken = tmp_path / "broken.png"
    broken.write_bytes(bytes(bad))
    with pytest.raises(ImageReadError, match=r"broken\.png: (corrupt|PNG chunk checksum)"):
        open_image(broken).read_all()
    header_only = tmp_path / "header.png"
    header_only.write_bytes(good[:40])
    with pytest.raises(ImageReadError, match="header.png: PNG ends"):
        open_image(header_only)


def test_cached_band_cannot_be_corrupted_by_the_caller(tmp_path):
    path = tmp_path / "smear.png"
    path.write_bytes(encode_png(_smooth_rgb(), 2, 8))
    with open_image(path) as src:
        band = src.read_rows(0, 40)
        with pytest.raises(ValueError, match="read-only"):
            band[:] = 0
        np.testing.assert_array_equal(src.read_rows(30, 50), read_image(path)[30:50])
