"""A noisy camera's images: the noise measure, the band-by-band blur, and what the counter does with them."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bcedge.catalogue import resolve_model
from bcedge.imageio import read_image
from bcedge.runtime import denoise
from bcedge.runtime.counter import Counter
from bcedge.runtime.frames import NOISY
from bcedge.runtime.sources import ArraySource

SAMPLE = min((Path(__file__).resolve().parents[2] / "bcedge/assets/sample_bccd/JPEGImages").glob("*.jpg"))


def smear(size: int = 300) -> np.ndarray:
    """Pink disks with darker rims on a pale background, smooth but full of edges."""
    image = np.full((size, size, 3), (235, 225, 230), np.uint8)
    rng = np.random.default_rng(1)
    for x, y in rng.integers(20, size - 20, (40, 2)):
        cv2.circle(image, (int(x), int(y)), 18, (200, 140, 160), -1, cv2.LINE_AA)
        cv2.circle(image, (int(x), int(y)), 18, (170, 110, 130), 2, cv2.LINE_AA)
    return cv2.GaussianBlur(image, (0, 0), 1.0)


def grainy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    grain = np.random.default_rng(seed).normal(0, sigma, image.shape)
    return np.clip(image + grain, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("sigma", [3.0, 6.0, 12.0])
def test_noise_measure_finds_the_grain_and_not_the_cell_edges(sigma):
    clean = smear()
    assert denoise.noise_sigma(clean) < 0.5 * denoise.NOISY_SIGMA
    assert denoise.noise_sigma(grainy(clean, sigma)) == pytest.approx(sigma, rel=0.2)


def test_a_smoothed_source_read_by_bands_is_the_whole_image_blurred():
    image = grainy(smear(), 8.0)
    whole = cv2.GaussianBlur(image, (0, 0), 1.3, borderType=cv2.BORDER_REFLECT_101)
    source = denoise.SmoothedSource(ArraySource(image), 1.3)
    for band in (1, 7, 64, 300):
        rows = np.concatenate([source.read_rows(y, min(y + band, 300)) for y in range(0, 300, band)])
        assert np.array_equal(rows, whole), band


def test_the_blur_grows_with_the_grain_within_bounds():
    assert denoise.smoothing_sigma(2.5) == denoise.SMOOTH_SIGMA
    assert denoise.smoothing_sigma(denoise.REFERENCE_NOISE) == pytest.approx(denoise.SMOOTH_SIGMA)
    assert denoise.SMOOTH_SIGMA < denoise.smoothing_sigma(8.0) < denoise.MAX_SMOOTH_SIGMA
    assert denoise.smoothing_sigma(100.0) == denoise.MAX_SMOOTH_SIGMA


def test_only_noisy_images_are_smoothed():
    clean = smear()
    view, flags = denoise.smoothed_if_noisy(ArraySource(clean))
    assert flags == [] and isinstance(view, ArraySource)
    view, flags = denoise.smoothed_if_noisy(ArraySource(grainy(clean, 10.0)))
    assert flags == [NOISY] and isinstance(view, denoise.SmoothedSource)


def test_counter_smooths_a_grainy_sample_flags_it_and_counts_closer_to_the_clean_image():
    """The bundled sample with a cheap camera's grain: flagged, smoothed, and its counts back near the clean ones."""
    clean = read_image(SAMPLE)
    noisy = grainy(clean, 20.0)
    model = resolve_model("default")
    # a fresh counter for each: a counter's next scale guess depends on the images it counted before
    reference = Counter.load(model, device="cpu").count(clean)
    smoothed = Counter.load(model, device="cpu").count(noisy)
    raw = Counter.load(model, device="cpu", denoise=False).count(noisy)
    assert NOISY not in reference.flags and NOISY in smoothed.flags and NOISY not in raw.flags
    assert smoothed.to_dict()["flags"] == [NOISY]

    def off(result) -> int:
        return sum(abs(result.counts.get(name, 0) - n) for name, n in reference.counts.items())

    assert off(smoothed) < off(raw)
