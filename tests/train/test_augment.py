"""Augmentations move boxes with the pixels and always end at the model's input size."""
import numpy as np
import pytest

from bcedge.train.augment import AugmentConfig, _flip, _rot90, augment, fit_to_size


def _marked_image():
    img = np.zeros((60, 80, 3), np.uint8)
    img[10:20, 30:50] = 255  # one white box: x 30..50, y 10..20
    return img, np.array([[30, 10, 50, 20]], np.float32)


def _box_of_white(img):
    ys, xs = np.nonzero(img[..., 0] > 127)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.mark.parametrize("op", [lambda i, b: _flip(i, b, True), lambda i, b: _flip(i, b, False), _rot90])
def test_geometric_ops_move_boxes_with_pixels(op):
    img, boxes = _marked_image()
    out, moved = op(img, boxes)
    assert list(moved[0]) == _box_of_white(np.ascontiguousarray(out))


def test_random_augment_ends_at_input_size_with_boxes_inside():
    img, boxes = _marked_image()
    for seed in range(20):
        out, b, labels = augment(img, boxes, np.array([1]), (64, 64), AugmentConfig(), np.random.default_rng(seed))
        assert out.shape == (64, 64, 3)
        assert len(b) == len(labels)
        if len(b):
            assert (b[:, 0] >= 0).all() and (b[:, 2] <= 64).all() and (b[:, 1] >= 0).all() and (b[:, 3] <= 64).all()


def test_fit_to_size_drops_boxes_mostly_outside_the_crop():
    img = np.zeros((100, 100, 3), np.uint8)
    boxes = np.array([[0, 0, 20, 20], [45, 0, 70, 20]], np.float32)  # second is 20% inside a 50-wide crop
    _, kept, labels = fit_to_size(img, boxes, np.array([1, 2]), (50, 50), None, min_visible=0.35)
    assert labels.tolist() == [1]


def test_greyscale_and_blur_happen_at_their_probability():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    img[..., 0] = 200                                            # a coloured image
    boxes = np.array([[8, 8, 40, 40]], np.float32)
    plain = AugmentConfig(flip=0, rot90=0, scale=(1, 1), hue=0, saturation=0, brightness=0, contrast=0, channel_gain=0)
    grey = AugmentConfig(**{**plain.__dict__, "greyscale": 1.0})
    blurred = AugmentConfig(**{**plain.__dict__, "blur": 1.0})
    same, _, _ = augment(img, boxes, np.array([1]), (64, 64), plain, np.random.default_rng(1))
    assert not np.array_equal(same[..., 0], same[..., 1])        # without them: still colour, still sharp
    out, _, _ = augment(img, boxes, np.array([1]), (64, 64), grey, np.random.default_rng(1))
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    out, _, _ = augment(img, boxes, np.array([1]), (64, 64), blurred, np.random.default_rng(1))
    assert out[..., 1].astype(float).std() < 0.8 * same[..., 1].astype(float).std()
