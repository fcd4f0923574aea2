"""Inputs are checked up front: wrong arrays refused with what was expected, greyscale counted but
flagged, every image under a pixel budget that can be raised."""
import cv2
import numpy as np
import pytest
from test_counter import ComponentsBackend, _meta, _smear

from bcedge.runtime.counter import Counter
from bcedge.runtime.frames import GREYSCALE, check_frame, decode_cap, pixel_budget
from bcedge.runtime.sources import ImageTooLarge


@pytest.fixture(scope="module")
def counter():
    return Counter(ComponentsBackend(_meta()))


@pytest.mark.parametrize("shape, says", [
    ((3, 220, 300), "channels-first"),
    ((220, 300, 2), "got 2 channels"),
    ((220, 300, 5), "got 5 channels"),
    ((4, 220, 300, 3), "got shape"),
])
def test_arrays_of_the_wrong_shape_are_refused_saying_what_was_expected(counter, shape, says):
    with pytest.raises(ValueError, match=says) as caught:
        counter.count(np.zeros(shape, np.uint8), source="rig-frame")
    assert "rig-frame: expected an RGB image array (H, W, 3)" in str(caught.value)


def test_float_arrays_are_refused(counter):
    with pytest.raises(ValueError, match="dtype float32"):
        counter.count(np.zeros((50, 60, 3), np.float32))


def test_a_channels_first_frame_would_otherwise_count_nothing(counter):
    image, truth = _smear(seed=2)
    assert counter.count(image).counts == truth  # the same pixels, channels last: counted
    with pytest.raises(ValueError, match=r"np.transpose\(frame, \(1, 2, 0\)\)"):
        counter.count(np.ascontiguousarray(image.transpose(2, 0, 1)))


def test_greyscale_is_counted_but_flagged_in_the_result_and_its_dict(counter, tmp_path):
    image, _ = _smear(seed=3)
    colour = counter.count(image)
    assert colour.flags == [] and colour.to_dict()["flags"] == []
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    for frame in (grey, grey[:, :, None]):
        result = counter.count(frame)
        assert result.flags == [GREYSCALE] and result.to_dict()["flags"] == [GREYSCALE]
        assert result.image_size == (300, 220)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    cv2.imwrite(str(tmp_path / "colour.png"), image[:, :, ::-1])
    assert counter.count_file(tmp_path / "grey.png").flags == [GREYSCALE]
    assert counter.count_file(tmp_path / "colour.png").flags == []
    # a monochrome camera's frame with three equal channels, as an array, a PNG, a JPEG and a stream's frame
    grey3 = np.repeat(grey[:, :, None], 3, axis=2)
    assert counter.count(grey3).flags == [GREYSCALE]
    cv2.imwrite(str(tmp_path / "grey3.png"), grey3)
    cv2.imwrite(str(tmp_path / "grey3.jpg"), grey3, [cv2.IMWRITE_JPEG_QUALITY, 80])
    for name in ("grey3.png", "grey3.jpg"):
        assert GREYSCALE in counter.count_file(tmp_path / name).flags, name   # (the JPEG is also "noisy")
    assert [r.flags for r in counter.stream([grey, grey3, image])] == [[GREYSCALE], [GREYSCALE], []]


@pytest.mark.timeout(60)
def test_the_pixel_budget_refuses_huge_arrays_at_once_and_can_be_raised(tmp_path):
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (100_000, 100_000, 3))  # 10 Gpx, no memory
    with pytest.raises(ImageTooLarge, match="100000x100000 .* over the pixel budget .*--max-pixels"):
        Counter(ComponentsBackend(_meta())).count(huge)  # the default budget: runs for hours without it
    image, truth = _smear(seed=4)
    small_budget = Counter(ComponentsBackend(_meta()), max_pixels=10_000)
    with pytest.raises(ImageTooLarge, match="300x220"):
        small_budget.count(image)
    cv2.imwrite(str(tmp_path / "smear.png"), image[:, :, ::-1])
    with pytest.raises(ImageTooLarge, match="smear.png: 300x220"):
        small_budget.count_file(tmp_path / "smear.png")
    assert Counter(ComponentsBackend(_meta()), max_pixels=300 * 220).count(image).counts == truth


def test_the_default_budget_follows_memory_and_the_environment(monkeypatch):
    import bcedge.runtime.frames as frames

    monkeypatch.delenv("BCEDGE_MAX_PIXELS", raising=False)
    monkeypatch.setattr(frames, "memory_bytes", lambda: 8 * 2**30)
    assert pixel_budget() == 8 * 2**30 // 16  # an 8 GB box: 537 Mpx
    monkeypatch.setenv("BCEDGE_MAX_PIXELS", "2e9")
    assert pixel_budget() == 2_000_000_000 and pixel_budget(1000) == 1000 and pixel_budget(0) is None


def test_a_budget_given_raises_the_whole_decode_cap_too(tmp_path, monkeypatch):
    """A JPEG is decoded whole, under its own cap; ``--max-pixels`` must raise that cap as well as the budget."""
    monkeypatch.setenv("BCEDGE_MAX_DECODE_PIXELS", "10000")
    image, truth = _smear(seed=4)
    cv2.imwrite(str(tmp_path / "smear.jpg"), image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])
    with pytest.raises(ImageTooLarge, match="smear.jpg: JPEG of 300x220 .* must be decoded whole.*--max-pixels"):
        Counter(ComponentsBackend(_meta())).count_file(tmp_path / "smear.jpg")
    assert Counter(ComponentsBackend(_meta()), max_pixels=300 * 220).count_file(tmp_path / "smear.jpg").counts == truth
    assert decode_cap(None) is None and decode_cap(0) == 2**30   # 0, no budget: OpenCV's limit
    assert decode_cap(5) == 10000 and decode_cap(10**9) == 10**9      # raised by a budget, never lowered


def test_check_frame_keeps_good_arrays_as_they_are():
    rgb = np.zeros((5, 6, 3), np.uint8)
    checked, flags = check_frame(rgb)
    assert checked is rgb and flags == []
    assert check_frame(np.zeros((5, 6, 4), np.uint16))[1] == []
