"""Opening images by sniffing, arrays, the whole-decode cap, and cutting tiles from strips."""
import cv2
import numpy as np
import pytest

from bcedge.imageio import ImageReadError, read_image, read_image_with_note, significant_bits
from bcedge.runtime.readers.whole import WholeImageSource
from bcedge.runtime.sources import (DEFAULT_MAX_DECODE_PIXELS, ArraySource, ImageTooLarge, iter_tiles,
                                    max_decode_pixels, open_image)
from bcedge.runtime.tiling import TileGrid

RNG = np.random.default_rng(2)


def _rgb(h=90, w=130):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix,params", [(".jpg", []), (".bmp", []), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 90]),
                                           (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101])], ids=["jpeg", "bmp", "webp lossy",
                                                                                          "webp lossless"])
def test_jpeg_bmp_and_webp_decode_whole_under_the_cap(tmp_path, suffix, params):
    path = tmp_path / f"smear{suffix}"
    assert cv2.imwrite(str(path), _rgb(), params)
    with open_image(path) as src:
        assert isinstance(src, WholeImageSource) and (src.width, src.height) == (130, 90)
        np.testing.assert_array_equal(src.read_rows(10, 50), read_image(path)[10:50])
    with pytest.raises(ImageTooLarge, match=rf"smear\{suffix}: .*130x90.*tiled TIFF"):
        open_image(path, max_pixels=130 * 90 - 1)


def test_cap_comes_from_argument_env_or_default(monkeypatch):
    monkeypatch.delenv("BCEDGE_MAX_DECODE_PIXELS", raising=False)
    assert max_decode_pixels() == DEFAULT_MAX_DECODE_PIXELS == 2**28
    monkeypatch.setenv("BCEDGE_MAX_DECODE_PIXELS", "1e9")
    assert max_decode_pixels() == 10**9 and max_decode_pixels(5) == 5
    monkeypatch.setenv("BCEDGE_MAX_DECODE_PIXELS", "lots")
    with pytest.raises(ValueError, match="BCEDGE_MAX_DECODE_PIXELS"):
        max_decode_pixels()


def test_format_comes_from_content_not_name(tmp_path):
    path = tmp_path / "really_a_png.jpg"
    ok, data = cv2.imencode(".png", _rgb())
    path.write_bytes(data.tobytes())
    with open_image(path) as src:
        assert type(src).__name__ == "PngSource"


@pytest.mark.parametrize("name,content,message", [
    ("missing.png", None, "missing.png: no such image file"),
    ("empty.png", b"", "empty.png: file is empty"),
    ("notes.png", b"hello world, not an image", r"notes.png: named .png but is not a PNG file"),
    ("data.xyz", b"\x00\x01\x02\x03" * 4, r"data.xyz: not a supported image \(PNG, TIFF, JPEG, BMP, WEBP\)"),
    ("IMG_0001.HEIC", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "IMG_0001.HEIC: a HEIC photo, .*export it as JPEG"),
    ("sound.webp", b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00" + bytes(14), "sound.webp: a RIFF file that is not WebP"),
    ("cut.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF", "cut.jpg: JPEG ends"),
])
def test_bad_files_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=message):
        open_image(path)


def test_array_source_normalises_and_checks_rows():
    grey16 = RNG.integers(0, 65536, (40, 30), dtype=np.uint16)
    src = ArraySource(grey16, "frame 7")
    rows = src.read_rows(5, 9)
    assert rows.shape == (4, 30, 3) and rows.dtype == np.uint8
    np.testing.assert_array_equal(rows[:, :, 2], (grey16[5:9] >> 8).astype(np.uint8))
    assert "greyscale" in src.note  # to_rgb reports the conversion
    with pytest.raises(ValueError, match="frame 7: rows 30:50 are outside"):
        src.read_rows(30, 50)
    with pytest.raises(ImageReadError, match="frame 8: expected an image array"):
        ArraySource(np.zeros(5), "frame 8")


@pytest.mark.parametrize("size,tile,overlap,offset", [((130, 90), 48, 12, (0, 0)), ((130, 90), 40, 8, (17, 5)),
                                                      ((30, 20), 64, 8, (0, 0))])
def test_iter_tiles_cuts_strips_into_tiles(size, tile, overlap, offset):
    image = _rgb(size[1], size[0])
    grid = TileGrid.plan(size[0], size[1], tile, tile, overlap, offset)
    seen = 0
    for t, pixels in iter_tiles(ArraySource(image), grid, pad_value=7):
        assert pixels.shape == (tile, tile, 3)
        np.testing.assert_array_equal(pixels[: t.y1 - t.y0, : t.x1 - t.x0], image[t.y0:t.y1, t.x0:t.x1])
        assert (pixels[t.y1 - t.y0:] == 7).all() and (pixels[:, t.x1 - t.x0:] == 7).all()
        seen += 1
    assert seen == len(grid)
    with pytest.raises(ValueError, match="planned for"):
        next(iter_tiles(ArraySource(image[:10]), grid))


def _twelve_bit_smear(h: int = 64, w: int = 48) -> np.ndarray:
    """A 12-bit camera's RGB frame in 16-bit samples: bright background, darker cells, a black top band."""
    frame = np.full((h, w, 3), 3800, np.uint16)
    frame[20:30, 10:20] = (1500, 900, 1200)
    frame[:8] = 40   # the slide's dark edge: the first rows read say nothing of the image's bit depth
    return frame


def test_twelve_bit_frames_are_scaled_by_their_own_depth():
    frame = _twelve_bit_smear()
    rows = ArraySource(frame, "camera").read_all()
    np.testing.assert_array_equal(rows, (frame >> 4).astype(np.uint8))   # not >> 8: that would be nearly black
    assert rows[40, 40, 0] == 237 and rows[25, 15, 0] == 93


def test_a_streamed_image_scales_every_band_alike(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    frame = _twelve_bit_smear()
    path = tmp_path / "smear12.tif"
    tifffile.imwrite(path, frame, rowsperstrip=4, photometric="rgb")
    with open_image(path) as src:
        bands = [src.read_rows(y, y + 8) for y in range(0, src.height, 8)]   # the dark band first
        assert "12 significant bits" in src.note
    np.testing.assert_array_equal(np.concatenate(bands), (frame >> 4).astype(np.uint8))
    whole, note = read_image_with_note(path)
    np.testing.assert_array_equal(whole, (frame >> 4).astype(np.uint8))
    assert "12 significant bits" in note


@pytest.mark.parametrize("top, bits", [(255, 8), (900, 10), (4095, 12), (5000, 14), (65535, 16), (40000, 16)])
def test_significant_bits_round_up_to_a_camera_depth(top, bits):
    assert significant_bits(top) == bits
