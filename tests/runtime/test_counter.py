"""Counter end to end with a pixel-exact fake detector: tiling, batching, decoding and merging count
every cell exactly once, whatever the tile grid; results and errors are what a rig integrator sees."""
import threading

import cv2
import numpy as np
import pytest

from bcedge.artifact import ModelMeta
from bcedge.backends.base import Backend
from bcedge.imageio import ImageReadError
from bcedge.catalogue import resolve_model
from bcedge.runtime.counter import Counter

CLASSES = ["RBC", "WBC"]
COLOURS = {0: (200, 40, 40), 1: (40, 40, 200)}
SLOTS = 64  # fixed number of outputs per tile, like a real graph's anchor count


class ComponentsBackend(Backend):
    """'Detects' every coloured blob in a tile (whole or cut by the tile border) by connected components."""

    name = "components"

    def __init__(self, meta: ModelMeta) -> None:  # no file: the meta is given
        self.meta, self.device, self.precision, self.inference_seconds = meta, "cpu", "fp32", []
        self.batches = []

    def _load(self):
        raise NotImplementedError

    def _infer(self, batch):
        self.batches.append(len(batch))
        boxes = np.zeros((len(batch), SLOTS, 4), np.float32)
        scores = np.zeros((len(batch), SLOTS, len(CLASSES)), np.float32)
        for b, chw in enumerate(batch):
            rgb = (chw.transpose(1, 2, 0) * 255).round().astype(np.uint8)
            for cid, colour in COLOURS.items():
                mask = np.all(np.abs(rgb.astype(int) - colour) < 30, axis=2).astype(np.uint8)
                n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
                for x, y, w, h, _area in stats[1:]:
                    slot = int(np.argmin(scores[b].max(1) > 0)) if (scores[b].max(1) == 0).any() else None
                    boxes[b, slot] = (x, y, x + w, y + h)
                    scores[b, slot, cid] = 0.9
        return boxes, scores


def _meta(size=(64, 64), max_object=24):
    return ModelMeta(arch="fake", head="fake", backbone="fake", class_names=CLASSES, input_size=size,
                     max_object_size=max_object, default_score_threshold=0.5, nms_iou=0.5)


def _smear(width=300, height=220, seed=0):
    """Non-overlapping discs (radius 5-10) on white; returns image and true counts."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 255, np.uint8)
    centres, counts = [], [0, 0]
    for _ in range(400):
        r = int(rng.integers(5, 11))
        c = (int(rng.integers(r, width - r)), int(rng.integers(r, height - r)))
        if all((c[0] - x) ** 2 + (c[1] - y) ** 2 > (r + q + 3) ** 2 for x, y, q in centres):
            cid = int(rng.random() < 0.2)
            cv2.circle(image, c, r, COLOURS[cid], -1)
            centres.append((*c, r))
            counts[cid] += 1
    return image, dict(zip(CLASSES, counts))


@pytest.mark.parametrize("overlap", [24, 30, 40])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_every_cell_counted_once_whatever_the_grid(overlap, batch_size):
    image, truth = _smear()
    counter = Counter(ComponentsBackend(_meta()), overlap=overlap, batch_size=batch_size)
    result = counter.count(image)
    assert result.counts == truth
    assert result.tiles > 1 and result.image_size == (300, 220)


def test_plain_nms_merge_double_counts_cut_cells():
    """The core rule is what makes seams exact: plain NMS keeps partial boxes of cut cells."""
    image, truth = _smear()
    naive = Counter(ComponentsBackend(_meta()), overlap=24, merge="nms").count(image)
    assert naive.total > sum(truth.values())


def test_small_image_is_one_padded_tile_and_greyscale_is_accepted():
    image, truth = _smear(60, 50, seed=3)
    backend = ComponentsBackend(_meta())
    result = Counter(backend).count(image)
    assert result.tiles == 1 and result.counts == truth
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    assert Counter(backend).count(grey).total == 0  # no colour, no cells: but no crash either


def test_stream_gives_one_result_per_frame_and_threads_share_a_counter():
    frames = [_smear(seed=s) for s in range(3)]
    counter = Counter(ComponentsBackend(_meta()), batch_size=2)
    assert [r.counts for r in counter.stream(f for f, _ in frames)] == [t for _, t in frames]
    results = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, counter.count(frames[i][0]).counts)) for i in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results == {i: frames[i][1] for i in range(3)}


def test_result_dict_is_json_ready(tmp_path):
    import json

    image, truth = _smear(seed=1)
    result = Counter(ComponentsBackend(_meta())).count(image, source="rig-frame")
    data = json.loads(json.dumps(result.to_dict()))
    assert data["counts"] == truth and data["total"] == sum(truth.values())
    assert len(data["detections"]) == data["total"] and data["image"]["path"] == "rig-frame"


def test_file_errors_name_the_file(tmp_path):
    counter = Counter(ComponentsBackend(_meta()))
    broken = tmp_path / "half.png"
    ok, png = cv2.imencode(".png", _smear()[0])
    broken.write_bytes(png.tobytes()[: len(png) // 2])
    with pytest.raises(ImageReadError, match="half.png"):
        counter.count_file(broken)
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        resolve_model(tmp_path / "nope.onnx")


def test_bundled_models_resolve_by_name(monkeypatch, tmp_path):
    from bcedge import catalogue

    assert resolve_model("default") == catalogue.BUNDLED_MODELS["default"]
    monkeypatch.setitem(catalogue.BUNDLED_MODELS, "default-int8", tmp_path / "default.int8.onnx")
    with pytest.raises(FileNotFoundError, match="bundled model 'default-int8' is missing"):
        resolve_model("default-int8")
    (tmp_path / "default.int8.onnx").write_bytes(b"onnx")
    assert resolve_model("default-int8") == tmp_path / "default.int8.onnx"


def test_tile_other_than_model_input_is_refused():
    with pytest.raises(ValueError, match="differs from the model input"):
        Counter(ComponentsBackend(_meta()), tile=(128, 128))


def test_unknown_merge_strategy_is_refused_before_any_image():
    with pytest.raises(ValueError, match="unknown merge strategy 'sahi'.*core"):
        Counter(ComponentsBackend(_meta()), merge="sahi")


def test_tile_hooks_see_every_tile_in_grid_order_with_the_counters_own_detections():
    from bcedge.runtime.merge import merge_tiles

    image, truth = _smear()
    counter = Counter(ComponentsBackend(_meta()), overlap=24, batch_size=3)
    seen, also = [], []
    remove = counter.add_tile_hook(lambda tile, dets: seen.append((tile, dets)))
    counter.add_tile_hook(lambda tile, dets: also.append(tile.index))
    result = counter.count(image)
    grid = counter.plan(300, 220)
    assert [tile.index for tile, _ in seen] == list(range(len(grid))) == also
    assert all(tile.x0 >= 0 and tile.y0 >= 0 for tile, _ in seen)
    merged = merge_tiles(seen, counter.merge_params)   # tile pixels, before the merge: merging them again agrees
    assert merged.counts(CLASSES) == result.counts == truth
    remove()
    counter.count(image)
    assert len(seen) == len(grid) and len(also) == 2 * len(grid)


def test_merge_params_follow_the_counter():
    counter = Counter(ComponentsBackend(_meta()), merge="core+ios", nms_backend="numpy")
    params = counter.merge_params
    assert (params.strategy, params.iou, params.nms_backend) == ("core+ios", 0.5, "numpy")


def test_a_twelve_bit_camera_frame_counts_as_its_eight_bit_twin():
    """Scientific cameras give 12 bits in uint16: the bundled model counts such a frame as the 8-bit image."""
    from pathlib import Path

    from bcedge.imageio import read_image

    sample = sorted((Path(__file__).resolve().parents[2] / "bcedge/assets/sample_bccd/JPEGImages").glob("*.jpg"))[0]
    eight = read_image(sample)
    twelve = (eight.astype(np.uint16) << 4) | 0x8   # the 4 extra bits a 12-bit camera has
    # a fresh counter for each: a counter's next scale guess depends on the images it counted before
    counted = [Counter.load(resolve_model("default"), device="cpu").count(frame) for frame in (eight, twelve)]
    assert counted[0].counts == counted[1].counts and sum(counted[0].counts.values()) > 10
