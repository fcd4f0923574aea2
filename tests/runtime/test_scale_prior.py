"""The first guess of a new image's scale: the thumbnail the network reads, the bundled network on real
frames at other magnifications, and the counter falling back to the training scale without it."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from bcedge.catalogue import ASSETS
from bcedge.data import load_dataset
from bcedge.data.cellsize import image_cell_sizes
from bcedge.imageio import read_image
from bcedge.runtime import scale_prior
from bcedge.runtime.sources import ArraySource
from bcedge.testing.no_module import run_without_modules

SAMPLE = ASSETS / "sample_bccd"


def test_the_thumbnail_averages_whole_blocks_and_reports_its_scale():
    crop = np.random.default_rng(0).integers(0, 255, (500, 500, 3), dtype=np.uint8)
    thumb, per_px = scale_prior.thumbnail(crop)
    assert thumb.shape == (scale_prior.THUMB, scale_prior.THUMB, 3) and thumb.dtype == np.uint8
    assert per_px == pytest.approx(scale_prior.THUMB / 498)   # 3 x 3 blocks: the side trimmed to 498
    small, per_px = scale_prior.thumbnail(crop[:100, :100])
    assert small.shape[:2] == (scale_prior.THUMB, scale_prior.THUMB) and per_px == pytest.approx(1.6)
    with pytest.raises(ValueError, match="square"):
        scale_prior.thumbnail(crop[:100, :120])


@pytest.mark.parametrize("size, side", [((640, 480), 480), ((3000, 2000), scale_prior.MAX_CROP), ((300, 900), 300)])
def test_the_guess_looks_at_the_central_square(size, side):
    image = np.zeros((size[1], size[0], 3), np.uint8)
    image[size[1] // 2, size[0] // 2] = 255
    square = scale_prior.central_square(ArraySource(image))
    assert square.shape[:2] == (side, side) and square[side // 2, side // 2, 0] == 255


def test_a_missing_network_file_means_no_guess(tmp_path):
    assert scale_prior.shared_prior(tmp_path / "absent.onnx") is None
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    assert scale_prior.shared_prior(tmp_path / "broken.onnx") is None


def test_without_onnxruntime_opencv_runs_the_network_to_the_same_reading():
    """The network runs on ONNX Runtime where installed, else on OpenCV's DNN module: the same guess either way."""
    blob = scale_prior.to_blob(np.random.default_rng(0).integers(0, 256, (1, scale_prior.THUMB, scale_prior.THUMB, 3)))
    on_ort = float(scale_prior.network(scale_prior.PRIOR_PATH)(blob).reshape(-1)[0])
    run = run_without_modules(("onnxruntime",), """
        import numpy as np
        from bcedge.runtime import scale_prior
        blob = scale_prior.to_blob(np.random.default_rng(0).integers(0, 256, (1, scale_prior.THUMB, scale_prior.THUMB, 3)))
        print(float(scale_prior.network(scale_prior.PRIOR_PATH)(blob).reshape(-1)[0]))
        print(scale_prior.shared_prior(scale_prior.PRIOR_PATH.parent / "absent.onnx"))
    """)
    assert run.returncode == 0, run.stderr
    on_opencv, absent = run.stdout.split()
    assert float(on_opencv) == pytest.approx(on_ort, abs=1e-4) and absent == "None"


@pytest.fixture(scope="module")
def sample():
    data = load_dataset(SAMPLE)
    return [(read_image(r.image_path), float(px)) for r, px in zip(data.images, image_cell_sizes(data))]


@pytest.mark.parametrize("magnification", [0.4, 1.0, 2.5])
def test_the_bundled_network_reads_the_cell_size_of_frames_at_other_magnifications(sample, magnification):
    prior = scale_prior.shared_prior()
    assert prior is not None, "the bundled scale network is missing"
    errors = []
    for image, cell_px in sample:
        size = (round(image.shape[1] * magnification), round(image.shape[0] * magnification))
        resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if magnification < 1 else cv2.INTER_CUBIC)
        errors.append(abs(math.log(prior.cell_px(ArraySource(resized)) / (cell_px * magnification))))
    assert max(errors) < math.log(1.3)   # within 30%: the detector's first pass then measures the rest
