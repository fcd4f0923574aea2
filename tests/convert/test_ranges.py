"""Averaging calibration caches: the mean of each tensor's bounds, in ONNX Runtime's own cache layouts."""
from __future__ import annotations

import json

import pytest

from bcedge.convert.ranges import average_ranges


def _cache(path, bounds: dict, method="CalibrationMethod.MinMax", wrapped=True):
    def value(x):
        return {"data": [x], "dtype": "float32", "CLS": "numpy.array"} if wrapped else x

    data = {name: {"lowest": value(lo), "highest": value(hi), "hist": [1, 2], "CLS": "TensorData"}
            for name, (lo, hi) in bounds.items()}
    path.write_text(json.dumps({"CLS": "TensorsData", "data": data, "smooth_quant": False,
                                "calibration_method": {"CLS": "CalibrationMethod", "value": method}}))
    return path


@pytest.mark.parametrize("wrapped", [True, False])
def test_bounds_are_averaged_and_histograms_dropped(tmp_path, wrapped):
    a = _cache(tmp_path / "a.json", {"x": (-2.0, 4.0), "y": (0.0, 1.0)}, wrapped=wrapped)
    b = _cache(tmp_path / "b.json", {"x": (-4.0, 8.0), "y": (0.0, 3.0)}, wrapped=wrapped)
    out = json.loads(average_ranges([a, b], tmp_path / "mean.json").read_text())
    x, y = out["data"]["x"], out["data"]["y"]
    read = (lambda v: v["data"][0]) if wrapped else (lambda v: v)
    assert (read(x["lowest"]), read(x["highest"]), read(y["highest"])) == (-3.0, 6.0, 2.0)
    assert "hist" not in x and out["calibration_method"]["value"] == "CalibrationMethod.MinMax"


def test_refuses_caches_of_other_tensors_or_methods(tmp_path):
    a = _cache(tmp_path / "a.json", {"x": (0.0, 1.0)})
    with pytest.raises(ValueError, match="other tensors"):
        average_ranges([a, _cache(tmp_path / "b.json", {"z": (0.0, 1.0)})], tmp_path / "m.json")
    with pytest.raises(ValueError, match="different methods"):
        average_ranges([a, _cache(tmp_path / "c.json", {"x": (0.0, 1.0)}, "CalibrationMethod.Percentile")],
                       tmp_path / "m.json")
    with pytest.raises(ValueError, match="no calibration caches"):
        average_ranges([], tmp_path / "m.json")
