"""An eyepiece's round field: the dark surround found, filled with the field's background band by band, and what the
counter does with it."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bcedge.catalogue import resolve_model
from bcedge.data.appearance import inside_round_field, round_field, vignetted
from bcedge.imageio import read_image
from bcedge.runtime import field_stop
from bcedge.runtime.corrections import (
    CorrectedSource,
    Corrections,
    corrected,
    measured_corrections,
)
from bcedge.runtime.counter import Counter
from bcedge.runtime.frames import FIELD_STOP, UNEVEN_LIGHT
from bcedge.runtime.illumination import sample_step, sampled_colour
from bcedge.runtime.sources import ArraySource

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "bcedge/assets/sample_bccd/JPEGImages").glob("*.jpg"))
FIELDS = {"inscribed, sharp": (1.0, 0.0), "inscribed, soft rim": (0.95, 8.0), "small": (0.55, 4.0)}


@pytest.fixture(scope="module")
def samples() -> list[np.ndarray]:
    return [read_image(path) for path in SAMPLES]


def stop_of(image: np.ndarray) -> field_stop.FieldStop | None:
    return field_stop.found_field_stop(sampled_colour(ArraySource(image)), sample_step(image.shape[1], image.shape[0]))


def background_of(image: np.ndarray) -> np.ndarray:
    grey = image.mean(axis=2)
    return np.median(image[grey >= np.percentile(grey, 90)], axis=0)


def test_full_frames_have_no_field_stop(samples):
    for image in samples:
        source = ArraySource(image)
        assert corrected(source) == (source, [])


@pytest.mark.parametrize("field", FIELDS.values(), ids=FIELDS.keys())
def test_the_surround_is_filled_with_the_background_and_the_field_left_alone(samples, field):
    diameter, soft = field
    for image in samples:
        ringed = round_field(image, diameter, soft)
        source, flags = corrected(ArraySource(ringed))
        assert flags == [FIELD_STOP] and isinstance(source, CorrectedSource)
        filled = source.read_all()
        h, w = image.shape[:2]
        y, x = np.mgrid[0:h, 0:w]
        distance = np.hypot(x + 0.5 - w / 2, y + 0.5 - h / 2) - diameter * max(h, w) / 2
        outside, well_inside = distance > soft, distance < -0.05 * max(h, w)
        off_the_edge = np.minimum(np.minimum(x, w - 1 - x), np.minimum(y, h - 1 - y)) >= 8
        colour = np.array(source.corrections.field_stop.colour)
        assert np.abs(colour - background_of(image)).max() < 12
        # all of it, but where a circle grazes the image edge: slivers there thinner than the coarse sample's step
        assert (filled[outside & off_the_edge] == colour).all(axis=-1).mean() > 0.999
        assert (filled[outside] == colour).all(axis=-1).mean() > 0.98
        assert np.array_equal(filled[well_inside], ringed[well_inside])   # cells near the rim, not only away from it


def test_a_dark_region_in_a_corner_under_two_percent_of_the_frame_is_not_a_field_stop(samples):
    """A dark cell cut by a corner; a frame's thin black border joined to dim corners (TXL-PBC's 416 x 416 frames
    darkened at the corners measure 1.0-1.8%)."""
    for image in samples:
        nucleus = image.copy()
        cv2.circle(nucleus, (0, 0), 75, (20, 10, 30), -1)   # 1.4% of the frame
        assert stop_of(nucleus) is None
        cv2.circle(nucleus, (0, 0), 100, (20, 10, 30), -1)   # 2.6%
        assert stop_of(nucleus) is not None


def test_a_dark_frame_is_not_ringed():
    frame = np.full((480, 640, 3), 8, np.uint8)
    cv2.circle(frame, (320, 240), 60, (200, 200, 200), -1)   # a bright spot: 4% of the frame
    assert stop_of(frame) is None


def test_a_filled_source_read_by_bands_is_the_whole_image_filled(samples):
    ringed = round_field(samples[1], 0.9, 6)
    corrections = measured_corrections(ArraySource(ringed))
    whole = CorrectedSource(ArraySource(ringed), corrections).read_all()
    for band in (1, 7, 64):
        source = CorrectedSource(ArraySource(ringed), corrections)
        rows = np.concatenate([source.read_rows(y, min(y + band, ringed.shape[0])) for y in range(0, ringed.shape[0], band)])
        assert np.array_equal(rows, whole), band


def test_an_unevenly_lit_round_field_is_evened_then_filled_with_the_evened_background(samples):
    for image in samples:
        dim = round_field(vignetted(image, 0.4), 0.95, 5)
        source, flags = corrected(dim_source := ArraySource(dim))
        assert flags == [UNEVEN_LIGHT, FIELD_STOP]
        corrections = source.corrections
        evened_background = background_of(CorrectedSource(dim_source, Corrections(corrections.lamp)).read_all())
        assert np.abs(np.array(corrections.field_stop.colour) - evened_background).max() < 10


def test_options_turn_each_check_off(samples):
    ringed = ArraySource(round_field(vignetted(samples[0], 0.4)))
    assert corrected(ringed, even_light=False)[1] == [FIELD_STOP]
    assert corrected(ringed, fill_surround=False)[1] == [UNEVEN_LIGHT]
    assert corrected(ringed, even_light=False, fill_surround=False) == (ringed, [])


def test_counter_fills_a_round_field_flags_it_and_finds_the_cells_the_rim_cuts(samples):
    """Counted on the full frames, the cells whose centre the round field keeps are the reference; filling the
    surround finds more of them than counting the black-ringed frame as it is."""
    model = resolve_model("default")
    missed = {"filled": 0, "as it is": 0}
    for image in samples:   # a fresh counter for each: a counter's next scale guess depends on the images before
        h, w = image.shape[:2]
        reference = Counter.load(model, device="cpu").count(image).detections
        kept = reference.xyxy[inside_round_field(reference.xyxy, w, h)]
        ringed = round_field(image)
        for name, fill in (("filled", True), ("as it is", False)):
            result = Counter.load(model, device="cpu", fill_surround=fill).count(ringed)
            assert (FIELD_STOP in result.flags) == fill
            centres = (result.detections.xyxy[:, :2] + result.detections.xyxy[:, 2:]) / 2
            found = ((centres[None, :, 0] > kept[:, None, 0]) & (centres[None, :, 0] < kept[:, None, 2])
                     & (centres[None, :, 1] > kept[:, None, 1]) & (centres[None, :, 1] < kept[:, None, 3])).any(axis=1)
            missed[name] += int((~found).sum())
    assert missed["filled"] < missed["as it is"], missed


def test_a_noisy_grey_surround_is_found_and_filled(samples):
    """A phone's surround is rarely black: dark grey (25) with sensor noise (sigma 20)."""
    rng = np.random.default_rng(0)
    for image in samples:
        ringed = round_field(image, 0.95, 6)
        grain = rng.normal(0, 20, image.shape)
        noisy = np.clip(np.maximum(ringed, 25) + grain, 0, 255).astype(np.uint8)
        source, flags = corrected(ArraySource(noisy), even_light=False)
        assert flags == [FIELD_STOP]
        h, w = image.shape[:2]
        y, x = np.mgrid[0:h, 0:w]
        outside = np.hypot(x + 0.5 - w / 2, y + 0.5 - h / 2) > 0.95 * max(h, w) / 2 + 6
        filled = (source.read_all()[outside] == np.array(source.corrections.field_stop.colour)).all(axis=-1).mean()
        assert filled > 0.98, filled



def test_the_rim_is_filled_alike_on_every_side_of_a_large_frame():
    """Each pixel takes the nearest sample point's verdict: the bottom and right rims are filled as the top and left."""
    height, width = 2000, 2800
    ringed = round_field(np.full((height, width, 3), (200, 180, 190), np.uint8), 0.9, 30)
    source, _ = corrected(ArraySource(ringed), even_light=False)
    dark_left = (source.read_all() < np.array(source.corrections.field_stop.fill_below)).all(axis=-1)
    y, x = np.mgrid[0:height, 0:width]
    assert dark_left[x + y < (height + width) / 2].sum() == dark_left[x + y >= (height + width) / 2].sum() == 0
