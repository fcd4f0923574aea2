import cv2
import numpy as np
import pytest

from bcedge.data.imagesize import image_size, webp_size
from bcedge.imageio import ImageReadError


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif", ".webp"])
def test_header_size_matches_the_pixels(tmp_path, suffix):
    path = tmp_path / f"x{suffix}"
    assert cv2.imwrite(str(path), np.zeros((23, 37, 3), np.uint8))
    assert image_size(path) == (37, 23)


@pytest.mark.parametrize("channels,quality", [(3, 80), (3, 101), (4, 80), (4, 101)])
def test_webp_headers_give_the_size_without_decoding(channels, quality):
    """Lossy (VP8), lossless (VP8L) and with alpha (VP8X or VP8L) headers."""
    data = cv2.imencode(".webp", np.full((1201, 2049, channels), 200, np.uint8), [cv2.IMWRITE_WEBP_QUALITY, quality])[1]
    assert webp_size(data.tobytes()[:30]) == (2049, 1201)


def test_missing_empty_and_truncated_files_are_named(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    for name in ("missing.png", "empty.png", "cut.jpg"):
        with pytest.raises(ImageReadError, match=name):
            image_size(tmp_path / name)
