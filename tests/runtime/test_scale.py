"""Scale-aware counting: user-given scales, the auto estimate, and boxes mapped back to the user's pixels.

The backend is a test double that "detects" dark disks by thresholding each tile, so the scale the
counter chooses and the boxes it returns can be checked against disks drawn at known places. A first
image's first guess is the training images' scale here, unless a test gives the counter a scale network
of its own (the bundled one reads real smears: ``test_scale_prior.py``).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bcedge.artifact import ModelMeta
from bcedge.runtime import scale as scaling
from bcedge.runtime.counter import Counter

CELL_PX = 56.0


@pytest.fixture(autouse=True)
def no_bundled_scale_network(monkeypatch):
    monkeypatch.setattr("bcedge.runtime.counter.shared_prior", lambda: None)


class FixedPrior:
    """A scale network that always sees red cells of ``cell_px``."""

    def __init__(self, cell_px: float) -> None:
        self.cell_px_value, self.calls = cell_px, 0

    def cell_px_in(self, square) -> float:
        self.calls += 1
        return self.cell_px_value


def counter_reading(monkeypatch, cell_px: float) -> tuple[Counter, FixedPrior]:
    """A counter of disks whose scale network reads ``cell_px`` (change ``prior.cell_px_value`` between images)."""
    prior = FixedPrior(cell_px)
    monkeypatch.setattr("bcedge.runtime.counter.shared_prior", lambda: prior)
    return Counter(DiskBackend(scaled_meta()), cell_size="auto"), prior


class DiskBackend:
    """Boxes of the dark blobs in each tile, as a detector graph would give them (one score row each)."""

    name = "disks"

    def __init__(self, meta: ModelMeta) -> None:
        self.meta, self.calls = meta, []

    def infer(self, batch: np.ndarray):
        self.calls.append(batch.shape)
        out_boxes, out_scores = [], []
        for tile in batch:
            grey = (tile.mean(axis=0) * 255).astype(np.uint8)
            count, _, stats, _ = cv2.connectedComponentsWithStats((grey < 100).astype(np.uint8))
            boxes = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in stats[1:]], np.float32).reshape(-1, 4)
            scores = np.zeros((len(boxes), self.meta.num_classes), np.float32)
            scores[:, 0] = 0.9
            out_boxes.append(boxes)
            out_scores.append(scores)
        width = max(len(b) for b in out_boxes) or 1
        pad = lambda a, n: np.concatenate([a, np.zeros((n - len(a), a.shape[1]), np.float32)])  # noqa: E731
        return np.stack([pad(b, width) for b in out_boxes]), np.stack([pad(s, width) for s in out_scores])

    def warmup(self, *args) -> None:
        pass

    def describe(self) -> str:
        return "disk finder"


def scaled_meta(**extra) -> ModelMeta:
    return ModelMeta(arch="test", head="test", backbone="test", class_names=["RBC", "WBC", "Platelets"],
                     input_size=(256, 256), dynamic_input=True, stride=32, max_object_size=80.0,
                     score_thresholds={"RBC": 0.5, "WBC": 0.5, "Platelets": 0.5},
                     pixel_scale={"cell_px": CELL_PX, "training_data": {"median_px": 100.0}}, **extra)


def smear(diameter: int, size=(900, 700), spacing: float = 1.6, seed: int = 0):
    """Grey image with dark disks of ``diameter`` px on a jittered grid; returns (image, true boxes)."""
    rng = np.random.default_rng(seed)
    image = np.full((size[1], size[0], 3), 220, np.uint8)
    step = int(diameter * spacing)
    boxes = []
    for cy in range(step // 2 + 4, size[1] - step // 2, step):
        for cx in range(step // 2 + 4, size[0] - step // 2, step):
            x, y = cx + int(rng.integers(-3, 4)), cy + int(rng.integers(-3, 4))
            cv2.circle(image, (x, y), diameter // 2, (40, 40, 40), -1)
            boxes.append([x - diameter / 2, y - diameter / 2, x + diameter / 2, y + diameter / 2])
    return image, np.array(boxes, np.float32)


@pytest.mark.parametrize("diameter", [40, 100, 150])
def test_auto_scale_finds_the_cell_size_and_counts_every_disk(diameter):
    image, truth = smear(diameter)
    counter = Counter(DiskBackend(scaled_meta()), cell_size="auto")
    result = counter.count(image)
    assert result.scale.method == "auto"
    assert result.scale.cell_px == pytest.approx(diameter, rel=0.12)
    assert result.scale.factor == pytest.approx(CELL_PX / diameter, rel=0.12)
    assert result.counts["RBC"] == len(truth)
    # boxes come back in the image's own pixels: every true disk has a box within a few pixels
    found = result.detections.xyxy
    nearest = np.abs(found[None, :, :] - truth[:, None, :]).max(axis=2).min(axis=1)
    assert nearest.max() <= 0.06 * diameter + 3
    assert result.to_dict()["scale"]["method"] == "auto"


def test_a_given_cell_size_and_pixel_pitch_set_the_factor():
    image, truth = smear(100)
    by_size = Counter(DiskBackend(scaled_meta()), cell_size=100).count(image)
    assert by_size.scale.method == "cell-size" and by_size.scale.factor == pytest.approx(0.56)
    by_pitch = Counter(DiskBackend(scaled_meta()), um_per_px=0.075).count(image)   # 7.5 um / 0.075 = 100 px
    assert by_pitch.scale.method == "um-per-px" and by_pitch.scale.factor == pytest.approx(0.56)
    assert by_size.counts == by_pitch.counts and by_size.counts["RBC"] == len(truth)


def test_images_at_the_training_scale_are_not_resampled():
    image, _ = smear(int(CELL_PX))
    backend = DiskBackend(scaled_meta())
    result = Counter(backend, cell_size="auto").count(image)
    assert result.scale.factor == 1.0          # within the snap: no interpolation at all
    exact = Counter(DiskBackend(scaled_meta()), cell_size=CELL_PX).count(image)
    assert result.counts == exact.counts


def test_no_cells_falls_back_to_the_training_images_scale_and_says_so():
    blank = np.full((400, 500, 3), 220, np.uint8)
    result = Counter(DiskBackend(scaled_meta()), cell_size="auto").count(blank)
    assert result.scale.method == "fallback"
    assert result.scale.factor == pytest.approx(CELL_PX / 100.0)
    assert "red cells found" in result.scale.note and result.total == 0


def test_no_cells_after_counted_images_falls_back_to_their_scale():
    # a sparse field from the same microscope: its scale, not the training images'
    counter = Counter(DiskBackend(scaled_meta()), cell_size="auto")
    counted = counter.count(smear(150, seed=1)[0])
    result = counter.count(np.full((400, 500, 3), 220, np.uint8))
    assert result.scale.method == "fallback" and "last images counted" in result.scale.note
    assert result.scale.factor == pytest.approx(counted.scale.factor)
    assert counter.scale_history.factors == (counted.scale.factor,)      # a fallback is not an estimate: not remembered


def test_a_stream_reuses_the_last_scale_so_the_second_frame_takes_one_pass():
    counter = Counter(DiskBackend(scaled_meta()), cell_size="auto")
    first = counter.count(smear(150, seed=1)[0])
    second = counter.count(smear(150, seed=2)[0])
    assert first.scale.passes >= 2 and second.scale.passes == 1
    assert second.timings["estimate_s"] == 0.0


class PartsBackend(DiskBackend):
    """Like a detector far from its working scale: a disk over twice the working size is "found" as a part of
    it (a box half its size) with a middling score, as the default model finds parts of cells it sees 3x too big."""

    def infer(self, batch: np.ndarray):
        boxes, scores = super().infer(batch)
        sides = np.maximum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1])
        parts = sides > 2 * CELL_PX
        centre = (boxes[..., :2] + boxes[..., 2:]) / 2
        half = (boxes[..., 2:] - boxes[..., :2]) / 4
        boxes[parts] = np.concatenate([centre - half, centre + half], axis=-1)[parts]
        scores[parts, 0] = 0.55
        return boxes, scores


def test_a_fresh_image_far_from_the_training_scale_is_measured_on_other_scales():
    # red cells of 400 px: the first guess (100 px, the training images') sees them 4x too large, finds parts
    # of them, unsure; the passes at other scales find whole cells, sure of them, and give the scale
    image, truth = smear(400, size=(2400, 1800))
    result = Counter(PartsBackend(scaled_meta()), cell_size="auto").count(image)
    assert result.scale.method == "auto" and result.scale.cell_px == pytest.approx(400, rel=0.12)
    assert result.counts["RBC"] == len(truth)
    # the guess, the ladder; the pass at 0.14 saw the whole image at the scale it measured: it is the count
    assert result.scale.passes == 1 + len(scaling.ladder(CELL_PX / 100.0))
    assert result.timings["estimate_s"] > 0
    # a stream from that microscope: the next frame starts at the measured scale, one pass
    counter = Counter(PartsBackend(scaled_meta()), cell_size="auto")
    counter.count(image)
    assert counter.count(smear(400, size=(2400, 1800), seed=3)[0]).scale.passes == 1


def test_a_good_thumbnail_guess_makes_the_first_pass_the_count(monkeypatch):
    # the same 400 px cells: guessed right from the thumbnail, one pass instead of the ladder
    prior = FixedPrior(380.0)
    monkeypatch.setattr("bcedge.runtime.counter.shared_prior", lambda: prior)
    image, truth = smear(400, size=(2400, 1800))
    counter = Counter(PartsBackend(scaled_meta()), cell_size="auto")
    result = counter.count(image)
    assert result.scale.method == "auto" and result.scale.cell_px == pytest.approx(400, rel=0.12)
    assert result.scale.passes == 1 and result.counts["RBC"] == len(truth)
    counter.count(image)
    assert prior.calls == 1    # a rig's next images start from what it measured
    assert Counter(PartsBackend(scaled_meta()), cell_size="auto", scale_prior=False).scale_prior is None


def test_a_wrong_thumbnail_guess_is_corrected_by_the_ladder(monkeypatch):
    monkeypatch.setattr("bcedge.runtime.counter.shared_prior", lambda: FixedPrior(100.0))
    image, truth = smear(400, size=(2400, 1800))
    result = Counter(PartsBackend(scaled_meta()), cell_size="auto").count(image)
    assert result.scale.cell_px == pytest.approx(400, rel=0.12) and result.counts["RBC"] == len(truth)
    assert result.scale.passes > 1


def test_a_frame_of_another_size_whose_thumbnail_reads_another_rig_is_counted_as_that_rigs_first(monkeypatch):
    # a folder shared by two microscopes: rig A's 100 px cells in 800x600 frames, then rig B's 200 px in 1000x700
    counter, prior = counter_reading(monkeypatch, 100.0)
    for seed in (1, 2):
        counter.count(smear(100, size=(800, 600), seed=seed)[0])
    assert prior.calls == 1                      # rig A's second frame started from the first one's scale
    prior.cell_px_value = 190.0
    image, truth = smear(200, size=(1000, 700), seed=3)
    result = counter.count(image)
    assert prior.calls == 2 and result.scale.passes == 1 and result.counts["RBC"] == len(truth)
    assert result.scale.cell_px == pytest.approx(200, rel=0.12)
    # rig B's next frame starts from rig B's scale alone: the history restarted
    assert counter.scale_history.factors == pytest.approx((CELL_PX / 200,), rel=0.12)
    assert counter.count(smear(200, size=(1000, 700), seed=4)[0]).scale.passes == 1 and prior.calls == 2


def test_a_frame_of_another_size_from_the_same_rig_keeps_its_history(monkeypatch):
    counter, prior = counter_reading(monkeypatch, 110.0)
    counter.count(smear(100, size=(800, 600), seed=1)[0])
    first = counter.scale_history.factors
    prior.cell_px_value = 105.0      # a crop of rig A's frames: the thumbnail reads rig A's scale
    result = counter.count(smear(100, size=(640, 480), seed=2)[0])
    assert prior.calls == 2 and result.scale.passes == 1 and result.timings["estimate_s"] > 0
    assert counter.scale_history.factors[:1] == first and len(counter.scale_history.factors) == 2
    assert counter.scale_history.frame == (640, 480)


def test_an_objective_changed_on_the_same_camera_costs_one_second_pass():
    # rig A's 60 px cells, then 130 px at the same frame size (a higher-power objective): the first such frame
    # is measured on a first pass and counted on a second, and the next starts from its scale (one pass: the frame
    # fits the first pass's crop at it), not from the median of rig A's
    counter = Counter(DiskBackend(scaled_meta()), cell_size="auto")
    for seed in (1, 2, 3):
        counter.count(smear(60, size=(1100, 800), seed=seed)[0])
    switched = counter.count(smear(130, size=(1100, 800), seed=4)[0])
    assert switched.scale.passes == 2 and switched.scale.cell_px == pytest.approx(130, rel=0.12)
    assert counter.count(smear(130, size=(1100, 800), seed=5)[0]).scale.passes == 1


def test_a_history_keeps_one_rigs_last_five_scales_and_restarts_at_a_scale_far_from_them():
    history = scaling.History()
    for factor in (0.50, 0.52, 0.48, 0.51, 0.49, 0.50):
        history = history.after(factor, (800, 600))
    assert history.factors == (0.52, 0.48, 0.51, 0.49, 0.50) and history.frame == (800, 600)
    assert history.after(0.70, (800, 600)).factors == (*history.factors[1:], 0.70)   # 1.4x: the same rig's spread
    assert history.after(0.80, (800, 600)) == scaling.History((0.80,), (800, 600))   # 1.6x: another rig's
    # another frame size: the same rig (a crop) when it measures within a first pass's tolerance, else another camera
    assert history.after(0.55, (640, 480)).factors == (*history.factors[1:], 0.55)
    assert history.after(0.62, (640, 480)) == scaling.History((0.62,), (640, 480))


class UnsureBackend(DiskBackend):
    """The disks found with the middling scores the default model gives dense frames at the right scale."""

    def infer(self, batch):
        boxes, scores = super().infer(batch)
        scores[scores > 0] = 0.65
        return boxes, scores


def test_an_unsure_first_pass_that_measures_the_thumbnails_guess_is_the_count(monkeypatch):
    image, truth = smear(100, size=(800, 600))   # within the first pass's crop
    alone = Counter(UnsureBackend(scaled_meta()), cell_size="auto").count(image)
    assert alone.scale.passes > 1   # no thumbnail: unsure, so other scales are tried
    monkeypatch.setattr("bcedge.runtime.counter.shared_prior", lambda: FixedPrior(95.0))
    confirmed = Counter(UnsureBackend(scaled_meta()), cell_size="auto").count(image)
    assert confirmed.scale.passes == 1 and confirmed.counts["RBC"] == len(truth)
    assert confirmed.scale.cell_px == pytest.approx(100, rel=0.12)
    monkeypatch.setattr("bcedge.runtime.counter.shared_prior", lambda: FixedPrior(160.0))
    assert Counter(UnsureBackend(scaled_meta()), cell_size="auto").count(image).scale.passes > 1   # they disagree


def sparse_field(diameter: int = 200) -> np.ndarray:
    """A white cell's field: two whole red cells, the rest cut by the image edge."""
    image = np.full((600, 800, 3), 220, np.uint8)
    for x, y in ((300, 300), (520, 300), (0, 100), (800, 500), (400, 0), (400, 600)):
        cv2.circle(image, (x, y), diameter // 2, (40, 40, 40), -1)
    return image


def test_a_sparse_field_the_detector_is_sure_of_is_counted_in_one_pass_at_its_thumbnails_scale(monkeypatch):
    # its two whole red cells measure what the thumbnail read: that is the scale
    monkeypatch.setattr("bcedge.runtime.counter.shared_prior", lambda: FixedPrior(190.0))
    result = Counter(DiskBackend(scaled_meta()), cell_size="auto").count(sparse_field())
    assert result.scale.method == "auto" and result.scale.cells == 2 and result.scale.passes == 1
    assert result.scale.cell_px == pytest.approx(200, rel=0.12) and result.counts["RBC"] == 6
    # the same two cells against a thumbnail reading 1.5x too large: too few to measure the image, but the detector
    # is sure of them at that scale, and other scales would not show more whole cells: counted there, said so
    monkeypatch.setattr("bcedge.runtime.counter.shared_prior", lambda: FixedPrior(300.0))
    counter = Counter(DiskBackend(scaled_meta()), cell_size="auto")
    sparse = counter.count(sparse_field())
    assert sparse.scale.method == "fallback" and sparse.scale.passes == 1 and sparse.counts["RBC"] == 6
    assert sparse.scale.factor == pytest.approx(CELL_PX / 300.0) and "thumbnail suggests" in sparse.scale.note
    assert not counter.scale_history    # not a measurement: the next image is still a first one
    # found with the middling scores of a pass far from the working scale: other scales are tried
    assert Counter(UnsureBackend(scaled_meta()), cell_size="auto").count(sparse_field()).scale.passes > 1


def test_a_rigs_later_sparse_field_is_counted_at_the_rigs_measured_scale(monkeypatch):
    counter, prior = counter_reading(monkeypatch, 200.0)
    counter.count(smear(200, size=(1000, 700), seed=1)[0])
    measured = counter.scale_history.guess
    prior.cell_px_value = 250.0   # another frame size, read 1.25x off: the same rig, started from the thumbnail
    result = counter.count(sparse_field())
    assert result.scale.method == "fallback" and "last images counted" in result.scale.note
    assert result.scale.factor == pytest.approx(measured) and result.counts["RBC"] == 6


def test_no_cells_anywhere_is_counted_at_the_training_scale_whatever_the_thumbnail_said(monkeypatch):
    monkeypatch.setattr("bcedge.runtime.counter.shared_prior", lambda: FixedPrior(200.0))
    meta = scaled_meta()
    counter = Counter(DiskBackend(meta), cell_size="auto")
    result = counter.count(np.full((400, 500, 3), 220, np.uint8))
    training = scaling.snap(CELL_PX / scaling.training_median_px(meta))
    assert training != scaling.snap(CELL_PX / 200.0)
    assert result.scale.method == "fallback" and "training images' typical scale" in result.scale.note
    assert result.scale.factor == pytest.approx(training) and result.counts["RBC"] == 0


def test_the_ladder_brackets_the_guess_within_the_factor_limits():
    assert scaling.ladder(0.5) == [0.0625, 0.125, 0.25, 1.0, 2.0]
    assert scaling.ladder(0.1) == [scaling.MIN_FACTOR, 0.2, 0.4]   # 0.05 and below: clamped, once


def test_models_without_a_pixel_scale_count_at_their_tile_scale():
    meta = scaled_meta()
    meta.pixel_scale = {}
    result = Counter(DiskBackend(meta), cell_size="auto").count(smear(60)[0])
    assert result.scale.method == "model" and result.scale.factor == 1.0


@pytest.mark.parametrize("options, message", [
    ({"cell_size": 0}, "positive"), ({"cell_size": -3}, "positive"), ({"cell_size": float("nan")}, "positive"),
    ({"um_per_px": 0}, "pixel pitch"), ({"um_per_px": 50}, "pixel pitch"),
    ({"cell_size": 50, "um_per_px": 0.1}, "not both"),
])
def test_impossible_scales_are_refused_up_front(options, message):
    with pytest.raises(ValueError, match=message):
        Counter(DiskBackend(scaled_meta()), **options)


def test_a_cell_larger_than_the_image_is_refused():
    with pytest.raises(ValueError, match="larger than the image"):
        Counter(DiskBackend(scaled_meta()), cell_size=5000).count(np.full((300, 400, 3), 200, np.uint8))


def test_snap_and_reuse_tolerance():
    assert scaling.snap(1.14) == 1.0 and scaling.snap(0.86) == 1.0 and scaling.snap(1.2) == 1.2
    assert scaling.close_enough(0.5, 0.57) and not scaling.close_enough(0.5, 0.58)


@pytest.mark.parametrize("relative", [0.8, 1.2])
def test_a_stream_near_the_working_scale_is_counted_once_per_frame(relative):
    # red cells just inside (counted unresampled) or just outside the snap of the working scale: after
    # the first frame every first pass is the count, and the counter remembers what it measured, not the
    # snapped factor 1 (a remembered 1 next to measured 0.87s made the next guess flip between the two)
    diameter = round(CELL_PX / (1 - scaling.SNAP * relative))
    counter = Counter(DiskBackend(scaled_meta()), cell_size="auto")
    results = [counter.count(smear(diameter, size=(480, 400), seed=seed)[0]) for seed in range(4)]
    assert [r.scale.passes for r in results[1:]] == [1, 1, 1]
    expected = 1.0 if relative < 1 else CELL_PX / diameter
    assert all(r.scale.factor == pytest.approx(expected, rel=0.05) for r in results)
    assert all(v == pytest.approx(CELL_PX / diameter, rel=0.05) for v in counter.scale_history.factors)


def test_a_frame_of_one_batch_starts_no_threads(monkeypatch):
    import threading

    counter = Counter(DiskBackend(scaled_meta()), cell_size=CELL_PX)
    image, truth = smear(int(CELL_PX), size=(300, 200))
    started = []
    original = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self.name), original(self))[1])
    result = counter.count(image)
    assert result.counts["RBC"] == len(truth) and result.tiles == 1
    assert started == []


def test_large_tiles_go_one_per_batch_small_ones_four():
    from bcedge.runtime.tiling import TileGrid

    counter = Counter(DiskBackend(scaled_meta()), cell_size=CELL_PX, batch_size=4)

    assert counter.batch_for(TileGrid.plan(2000, 2000, 320, 320, 40)) == 4
    assert counter.batch_for(TileGrid.plan(4000, 4000, 1024, 1024, 140)) == 1

