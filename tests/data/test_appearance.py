"""Another lab's look: each appearance shift keeps sizes and boxes and changes the pixels as it says."""
import cv2
import numpy as np
import pytest

from bcedge.data.annotations import Dataset, ImageAnnotation
from bcedge.data.appearance import (
    SHIFTS,
    appearance_shifted,
    inside_round_field,
    vignetted,
    visible_in_round_field,
)


@pytest.fixture
def smear(tmp_path):
    rng = np.random.default_rng(1)
    image = np.full((48, 64, 3), (200, 190, 225), np.uint8)                  # pinkish background (BGR)
    cv2.circle(image, (20, 24), 9, (150, 110, 190), -1)                     # a red cell
    image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    boxes = np.array([[11, 15, 30, 34]], np.float32)
    return Dataset([ImageAnnotation(tmp_path / "a.png", 64, 48, boxes, ["RBC"], "src", group="g")], ["RBC"]), image


@pytest.mark.parametrize("shift", list(SHIFTS))
def test_every_shift_keeps_size_labels_and_boxes(smear, tmp_path, shift):
    data, original = smear
    out = appearance_shifted(data, shift, tmp_path / "out")
    record = out.images[0]
    pixels = cv2.imread(str(record.image_path))
    assert pixels.shape == original.shape and (record.width, record.height) == (64, 48)
    assert np.array_equal(record.boxes, data.images[0].boxes) and record.labels == ["RBC"] and record.group == "g"
    changed = np.abs(pixels.astype(int) - original).mean()
    assert (changed == 0) if shift == "none" else (changed > 0.5), f"{shift}: mean change {changed:.2f}"


def test_shifts_change_what_they_name(smear, tmp_path):
    data, original = smear
    look = {name: cv2.imread(str(appearance_shifted(data, name, tmp_path / str(i)).images[0].image_path)).astype(float)
            for i, name in enumerate(("greyscale", "warm lamp", "pale stain", "defocus"))}
    grey = look["greyscale"]
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    blue, _, red = (look["warm lamp"][..., c].mean() - original[..., c].mean() for c in range(3))
    assert red > 5 and blue < -20
    saturation = lambda image: cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_BGR2HSV)[..., 1].mean()  # noqa: E731
    assert saturation(look["pale stain"]) < 0.6 * saturation(original)
    assert look["defocus"].std() < original.std()


def test_an_unknown_shift_is_named(smear, tmp_path):
    with pytest.raises(ValueError, match="unknown appearance shift 'sepia'"):
        appearance_shifted(smear[0], "sepia", tmp_path / "out")


def test_vignetting_darkens_the_corners_to_the_named_share_and_leaves_the_centre():
    flat = np.full((101, 201, 3), 200, np.uint8)
    dark = vignetted(flat, 0.4).astype(float)
    assert dark[50, 100, 0] == pytest.approx(200, abs=1) and dark[0, 0, 0] == pytest.approx(80, abs=3)
    assert dark[0, 100, 0] > dark[0, 0, 0] and np.array_equal(vignetted(flat[..., 0], 0.4), dark[..., 0].astype(np.uint8))


def test_round_field_labels_by_centre_and_by_the_share_that_shows():
    """A 640x480 frame, a circle 640 px across: a cell in the middle, one cut in half by the circle's right edge,
    one with a quarter of it in the field, one in the black corner."""
    boxes = np.array([[300, 200, 340, 240], [620, 220, 660, 260], [630, 220, 670, 260], [0, 0, 40, 40]], np.float32)
    assert inside_round_field(boxes, 640, 480).tolist() == [True, True, False, False]
    kept, cut = visible_in_round_field(boxes, 640, 480)
    assert kept.tolist() == [True, True, False, False]
    assert np.array_equal(cut[0], boxes[0])                       # wholly inside: unchanged
    assert cut[1, 2] == pytest.approx(640, abs=1) and np.array_equal(cut[1, [0, 1, 3]], boxes[1, [0, 1, 3]])
    kept, _ = visible_in_round_field(boxes, 640, 480, min_share=0.2)
    assert kept.tolist() == [True, True, True, False]             # a quarter shows: kept at a 20% share
