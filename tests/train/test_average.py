"""Averaging checkpoints gives the element-wise mean of their weights and refuses mismatched models."""
import pytest

torch = pytest.importorskip("torch")

from bcedge.models import build_detector, load_detector  # noqa: E402
from bcedge.train.average import average_checkpoints  # noqa: E402

SIZE = (128, 96)


def _saved(tmp_path, name, classes, seed, epoch):
    torch.manual_seed(seed)
    detector = build_detector("ssdlite_efficientnet_lite0", classes, SIZE, pretrained=False)
    detector.save(tmp_path / name, epoch=epoch)
    return tmp_path / name, detector.model.state_dict()


def test_average_is_the_mean_of_the_weights(tmp_path):
    a, weights_a = _saved(tmp_path, "a.pt", ["RBC", "WBC"], seed=0, epoch=3)
    b, weights_b = _saved(tmp_path, "b.pt", ["RBC", "WBC"], seed=1, epoch=4)
    out = average_checkpoints([a, b], tmp_path / "avg.pt")
    averaged, state = load_detector(out)
    key = next(k for k, v in weights_a.items() if v.is_floating_point() and v.ndim == 4 and not torch.equal(v, weights_b[k]))
    assert torch.allclose(averaged.model.state_dict()[key], (weights_a[key] + weights_b[key]) / 2, atol=1e-6)
    assert state["epoch"] == 4 and averaged.meta.recipe["weight_average"]["epochs"] == [3, 4]


def test_average_refuses_other_classes_and_a_single_file(tmp_path):
    a, _ = _saved(tmp_path, "a.pt", ["RBC", "WBC"], seed=0, epoch=1)
    b, _ = _saved(tmp_path, "b.pt", ["ring", "schizont"], seed=0, epoch=2)
    with pytest.raises(ValueError, match="cannot be averaged"):
        average_checkpoints([a, b], tmp_path / "avg.pt")
    with pytest.raises(ValueError, match="at least two"):
        average_checkpoints([a], tmp_path / "avg.pt")
