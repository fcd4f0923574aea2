"""The TIFF band reader gives the same pixels as tifffile.imread, reading only the strips/tiles needed."""
import numpy as np
import pytest
import tifffile

from bcedge.imageio import ImageReadError, to_rgb
from bcedge.runtime.readers.tiff import TiffSource
from bcedge.runtime.sources import ImageTooLarge, open_image

RNG = np.random.default_rng(1)
H, W = 150, 97


def _image(dtype=np.uint8, channels=3):
    top = np.iinfo(dtype).max
    shape = (H, W, channels) if channels > 1 else (H, W)
    return RNG.integers(0, top, shape, dtype=dtype, endpoint=True)


CASES = {
    "strips zlib": (_image(), dict(rowsperstrip=16, compression="zlib")),
    "tiles zlib": (_image(), dict(tile=(32, 48), compression="zlib")),
    "one uncompressed strip": (_image(), dict(rowsperstrip=H)),
    "uncompressed strips": (_image(), dict(rowsperstrip=7)),
    "uncompressed tiles": (_image(), dict(tile=(16, 16))),
    "grey 16-bit": (_image(np.uint16, 1), dict(rowsperstrip=10, compression="zlib")),
    "rgba": (_image(np.uint8, 4), dict(rowsperstrip=10, photometric="rgb", extrasamples=["unassalpha"])),
    "bigtiff big-endian": (_image(np.uint16), dict(bigtiff=True, byteorder=">", rowsperstrip=9)),
    "big-endian tiles predictor": (_image(np.uint16), dict(byteorder=">", tile=(32, 32), compression="zlib",
                                                           predictor=True)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bands_equal_tifffile_imread(tmp_path, name):
    image, options = CASES[name]
    path = tmp_path / "smear.tif"
    tifffile.imwrite(path, image, **options)
    expected, _ = to_rgb(tifffile.imread(path), "x")
    with open_image(path) as src:
        assert isinstance(src, TiffSource) and (src.width, src.height) == (W, H)
        np.testing.assert_array_equal(src.read_all(), expected)
        for y0, y1 in [(0, 40), (32, 90), (89, 150), (5, 6), (60, 70)]:
            np.testing.assert_array_equal(src.read_rows(y0, y1), expected[y0:y1], err_msg=f"rows {y0}:{y1}")


def test_planar_separate(tmp_path):
    image = _image()
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, np.moveaxis(image, 2, 0), photometric="rgb", planarconfig="separate", rowsperstrip=8)
    with open_image(path) as src:
        np.testing.assert_array_equal(src.read_rows(20, 77), image[20:77])


def test_palette_tiff_maps_colours(tmp_path):
    index = RNG.integers(0, 256, (H, W), dtype=np.uint8)
    colormap = RNG.integers(0, 65536, (3, 256), dtype=np.uint16)
    path = tmp_path / "palette.tif"
    tifffile.imwrite(path, index, photometric="palette", colormap=colormap, rowsperstrip=32)
    with open_image(path) as src:
        np.testing.assert_array_equal(src.read_all(), (colormap.T[index] >> 8).astype(np.uint8))


def test_reads_only_the_segments_a_band_needs(tmp_path, monkeypatch):
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, _image(), tile=(32, 32), compression="zlib")
    with open_image(path) as src:
        decoded = []
        original = src._decode
        monkeypatch.setattr(src, "_decode", lambda i: decoded.append(i) or original(i))
        src.read_rows(0, 40)  # tile rows 0 and 1, 4 tiles across
        assert sorted(decoded) == list(range(8))
        decoded.clear()
        src.read_rows(35, 70)  # tile row 1 is cached from the last band; row 2 is new
        assert sorted(decoded) == list(range(8, 12))


def test_truncated_and_oversized_tiff(tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, _image(), rowsperstrip=16, compression="zlib")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.tif"):
        with open_image(path) as src:
            src.read_all()
    big = tmp_path / "one_strip.tif"
    tifffile.imwrite(big, _image(), rowsperstrip=H, compression="zlib")
    with pytest.raises(ImageTooLarge, match="one_strip.tif: one TIFF strip"):
        open_image(big, max_pixels=5000)
    flt = tmp_path / "float.tif"
    tifffile.imwrite(flt, np.zeros((4, 4), np.float32))
    with pytest.raises(ImageReadError, match="float.tif: unsupported TIFF pixel type float32"):
        open_image(flt)


def test_an_lzw_tiff_is_decoded_whole_by_opencv_where_tifffile_cannot(tmp_path):
    """OpenCV and PIL write LZW by default; tifffile needs imagecodecs for it, which is not a dependency."""
    import cv2
    from tifffile import TIFF

    from bcedge.imageio import read_image
    from bcedge.runtime.readers.whole import WholeImageSource

    path = tmp_path / "lzw.tif"
    assert cv2.imwrite(str(path), _image(), [cv2.IMWRITE_TIFF_COMPRESSION, 5])
    with open_image(path) as src:
        assert (src.width, src.height) == (W, H)
        np.testing.assert_array_equal(src.read_rows(0, H), read_image(path))
        if 5 not in TIFF.DECOMPRESSORS:
            assert isinstance(src, WholeImageSource)
            with pytest.raises(ImageTooLarge, match="LZW-compressed TIFF .*imagecodecs"):
                open_image(path, max_pixels=1000)


def test_a_stack_of_images_is_told_from_a_pyramid(tmp_path):
    """A stack (fields, focal planes) is flagged: only its first page is counted. A slide scan's pyramid is one image."""
    from bcedge.runtime.frames import FIRST_PAGE, source_flags

    image = _image()
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([image] * 3), photometric="rgb")
    with tifffile.TiffWriter(tmp_path / "pyramid.tif") as tif:
        tif.write(image, photometric="rgb", subfiletype=0)
        tif.write(np.ascontiguousarray(image[::2, ::2]), photometric="rgb", subfiletype=1)
    for name, pages, flags in (("stack.tif", 3, [FIRST_PAGE]), ("pyramid.tif", 1, [])):
        with open_image(tmp_path / name) as src:
            assert src.pages == pages and source_flags(src) == flags, name
            np.testing.assert_array_equal(src.read_rows(0, H), image)
