"""``bcedge count`` hands the cluster options to the Ray engine, and refuses them for a local count."""
import pytest

from bcedge.cli import main
from bcedge.cluster.errors import ClusterError
from bcedge.testing.squares import squares_image, png_bytes


class _Refusing:
    """Stands in for RayEngine: records what it was given, then fails to join (no Ray needed)."""
    given: dict = {}

    def __init__(self, model, address, workers, **options) -> None:
        _Refusing.given = {"address": address, "workers": workers, **options}

    def __enter__(self):
        raise ClusterError("no cluster in this test")

    def __exit__(self, *exc) -> None:
        pass


@pytest.fixture()
def image(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(squares_image(2, 1)))
    return path


def test_worker_gpus_become_each_workers_ray_resources(image, monkeypatch, capsys):
    import bcedge.cluster.engine

    monkeypatch.setattr(bcedge.cluster.engine, "RayEngine", _Refusing)
    code = main(["count", str(image), "--engine", "ray", "--workers", "4", "--worker-gpus", "0.5", "--quiet"])
    assert code == 2 and "no cluster in this test" in capsys.readouterr().err
    assert _Refusing.given["workers"] == 4 and _Refusing.given["worker_options"] == {"num_gpus": 0.5}


@pytest.mark.parametrize("option, value", [("--worker-gpus", "1"), ("--workers", "2")])
def test_cluster_options_are_refused_for_a_local_count(image, capsys, option, value):
    assert main(["count", str(image), option, value, "--quiet"]) == 2
    assert "for --engine ray" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "two"])
def test_a_gpu_share_must_be_positive_and_whole_above_one(image, capsys, value):
    with pytest.raises(SystemExit):
        main(["count", str(image), "--engine", "ray", "--worker-gpus", value])
    assert "--worker-gpus" in capsys.readouterr().err
