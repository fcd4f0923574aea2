"""A dataset at another magnification: images and boxes scaled by one factor, labels and groups kept."""
import cv2
import numpy as np

from bcedge.data.annotations import Dataset, ImageAnnotation
from bcedge.data.rescale import rescaled


def test_images_and_boxes_scale_together(tmp_path):
    image = np.full((40, 60, 3), 230, np.uint8)
    cv2.rectangle(image, (10, 8), (29, 27), (0, 0, 0), -1)           # a 20x20 cell at (10, 8)
    cv2.imwrite(str(tmp_path / "a.jpg"), image)
    data = Dataset([ImageAnnotation(tmp_path / "a.jpg", 60, 40, np.array([[10, 8, 30, 28]], np.float32), ["RBC"],
                                    "src", group="g")], ["RBC"])
    for factor, suffix in ((0.5, ".jpg"), (2.0, ".png")):
        out = rescaled(data, factor, tmp_path / f"x{factor}", suffix=suffix)
        record = out.images[0]
        pixels = cv2.imread(str(record.image_path))
        assert record.image_path.suffix == suffix and pixels.shape[:2] == (round(40 * factor), round(60 * factor))
        assert (record.width, record.height) == (round(60 * factor), round(40 * factor))
        assert np.allclose(record.boxes, [[10 * factor, 8 * factor, 30 * factor, 28 * factor]])
        assert record.labels == ["RBC"] and record.group == "g" and out.class_names == ["RBC"]
        x0, y0, x1, y1 = (record.boxes[0] + [1, 1, -1, -1]).astype(int)     # the dark cell moved with its box
        assert pixels[y0:y1, x0:x1].mean() < 60 and pixels[0, -1].mean() > 200
