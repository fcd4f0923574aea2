"""An unevenly lit field: the lamp measured from the background, evened band by band, and what the counter does."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bcedge.catalogue import resolve_model
from bcedge.data.appearance import vignetted
from bcedge.imageio import read_image
from bcedge.runtime import corrections, illumination
from bcedge.runtime.counter import Counter
from bcedge.runtime.frames import UNEVEN_LIGHT
from bcedge.runtime.sources import ArraySource

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "bcedge/assets/sample_bccd/JPEGImages").glob("*.jpg"))


@pytest.fixture(scope="module")
def samples() -> list[np.ndarray]:
    return [read_image(path) for path in SAMPLES]


def lamp_of(image: np.ndarray) -> illumination.Lamp | None:
    return illumination.fitted_lamp(illumination.grey_levels(illumination.sampled_colour(ArraySource(image))))


def off_centre(image: np.ndarray, dimmest: float) -> np.ndarray:
    """A lamp off to the left: brightness falls linearly to ``dimmest`` times the left edge's at the right edge."""
    gain = np.linspace(1.0, dimmest, image.shape[1], dtype=np.float32)[None, :, None]
    return np.clip(image * gain + 0.5, 0, 255).astype(np.uint8)


def test_evenly_lit_samples_are_counted_as_they_are(samples):
    for image in samples:
        source = ArraySource(image)
        evened, flags = corrections.corrected(source)
        assert evened is source and flags == []


@pytest.mark.parametrize("darken", [lambda im: vignetted(im, 0.4), lambda im: off_centre(im, 0.5)],
                         ids=["dark corners", "lamp off-centre"])
def test_an_uneven_lamp_is_found_and_evened_back_near_the_original(samples, darken):
    for image in samples:
        dim = darken(image)
        evened, flags = corrections.corrected(ArraySource(dim))
        assert flags == [UNEVEN_LIGHT] and isinstance(evened, corrections.CorrectedSource)
        before = np.abs(dim.astype(np.int16) - image).mean()
        after = np.abs(evened.read_all().astype(np.int16) - image).mean()
        assert after < 0.35 * before, (before, after)


def test_a_dark_white_cell_in_the_middle_is_not_taken_for_the_lamp(samples):
    """Cells only darken the background: blocks far below the fitted lamp are left out of it."""
    for image in samples:
        cell = image.copy()
        h, w = cell.shape[:2]
        cv2.circle(cell, (w // 2, h // 2), h // 4, (120, 60, 150), -1)
        assert corrections.corrected(ArraySource(cell))[1] == []


def test_an_eyepiece_black_surround_is_not_a_dim_lamp(samples):
    for image in samples:
        h, w = image.shape[:2]
        y, x = np.mgrid[0:h, 0:w]
        ringed = image.copy()
        ringed[np.hypot(x - w / 2, y - h / 2) > w / 2] = 0
        assert corrections.measured_corrections(ArraySource(ringed)).lamp is None


def test_an_evened_source_read_by_bands_is_the_whole_image_evened(samples):
    dim = vignetted(samples[0], 0.4)
    lamp = lamp_of(dim)
    whole = corrections.CorrectedSource(ArraySource(dim), corrections.Corrections(lamp)).read_all()
    for band in (1, 7, 64):
        source = corrections.CorrectedSource(ArraySource(dim), corrections.Corrections(lamp))
        rows = np.concatenate([source.read_rows(y, min(y + band, dim.shape[0])) for y in range(0, dim.shape[0], band)])
        assert np.array_equal(rows, whole), band


def test_the_gain_is_one_at_the_brightest_and_capped_elsewhere(samples):
    lamp = lamp_of(vignetted(samples[0], 0.4))
    gain = lamp.gain(640, 480, 0, 480)
    assert gain.min() == pytest.approx(1.0, abs=0.02) and gain[240, 320] < 1.1 < gain[0, 0] <= illumination.MAX_GAIN
    steep = illumination.Lamp(lamp.coefficients[:3] + (-20.0, 0.0, -20.0), ratio=100.0, peak=lamp.coefficients[0])
    assert steep.gain(640, 480, 0, 1).max() == illumination.MAX_GAIN


def test_images_over_the_measured_size_are_not_measured(samples, monkeypatch):
    dim = ArraySource(vignetted(samples[0], 0.4))
    monkeypatch.setattr(corrections, "MAX_MEASURED_PIXELS", dim.width * dim.height - 1)
    assert corrections.corrected(dim) == (dim, [])


def test_counter_evens_dark_corners_flags_them_and_counts_closer_to_the_evenly_lit_image(samples):
    model = resolve_model("default")
    # a fresh counter for each: a counter's next scale guess depends on the images it counted before
    references = [Counter.load(model, device="cpu").count(image) for image in samples]
    dims = [vignetted(image, 0.15) for image in samples]
    evened = [Counter.load(model, device="cpu").count(dim) for dim in dims]
    raw = [Counter.load(model, device="cpu", even_light=False).count(dim) for dim in dims]
    assert all(UNEVEN_LIGHT not in r.flags for r in references + raw)
    assert all(r.to_dict()["flags"] == [UNEVEN_LIGHT] for r in evened)

    def off(results) -> int:
        return sum(abs(result.counts.get(name, 0) - n)
                   for result, reference in zip(results, references) for name, n in reference.counts.items())

    assert off(evened) < off(raw), (off(evened), off(raw))


@pytest.mark.parametrize("shape", [(1, 1), (3, 500), (800, 1), (211, 3001), (100, 200_000)])
def test_strips_and_very_long_images_are_measured_without_error(shape):
    """One row of blocks has no surface to fit; a sample step over the rows read at a time still reads every band."""
    image = np.full((*shape, 3), (210, 185, 200), np.uint8)    # a stained smear's pink
    image[:, ::7] = (140, 90, 150)
    source = ArraySource(image)
    assert corrections.corrected(source) == (source, [])
