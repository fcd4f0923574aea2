"""``bcedge count --engine ray`` on a real local Ray cluster (2 worker processes, 127.0.0.1): the same
detections, counts and files as the local run; a worker killed mid-task loses nothing and doubles nothing."""
import csv
import functools
import json
import socket
from pathlib import Path

import pytest
import tifffile

ray = pytest.importorskip("ray")

import bcedge.cluster
from bcedge.cli import main
from bcedge.cluster import count_files
from bcedge.cluster.engine import RayEngine
from bcedge.data.synth import generate_smear
from bcedge.testing.faults import Hooks, JobLog, KillOnce

TILE = ["--tile", "256x256", "--batch-size", "3"]   # many tiles on small images: bands of the slide
BANDS = 10**6                                        # pixels above which the test's TIFF is counted in bands


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=120 * 2**20, _node_ip_address="127.0.0.1",
             log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Three smears of different scales (the auto-scale history matters), a corrupt file, a stripped BigTIFF."""
    folder = tmp_path_factory.mktemp("images")
    for name, (w, h, seed) in {"a.png": (800, 600, 1), "b.png": (1000, 700, 2), "d.png": (700, 560, 3)}.items():
        generate_smear(w, h, seed=seed, out=folder / name)
        (folder / name).with_suffix(".json").unlink()
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    tifffile.imwrite(folder / "c.tif", generate_smear(1200, 950, seed=4).pixels, bigtiff=True, rowsperstrip=64,
                     photometric="rgb")
    return folder


def count(args: list[str], out: Path) -> tuple[int, dict, str, dict[str, bytes]]:
    """Run the CLI; (exit code, JSON without its times, CSV text, overlay bytes by name)."""
    code = main(["count", *args, *TILE, "--json", str(out / "c.json"), "--csv", str(out / "c.csv"),
                 "--overlay", str(out / "overlays"), "--quiet"])
    report = json.loads((out / "c.json").read_text())
    del report["generated_at"]
    for image in report["images"]:
        del image["timings"]
        image["overlay"] = Path(image["overlay"]).name   # each run writes to its own folder
    overlays = {p.name: p.read_bytes() for p in sorted((out / "overlays").iterdir())}
    return code, report, (out / "c.csv").read_text(), overlays


@pytest.fixture(scope="module")
def local_run(inputs, tmp_path_factory):
    return count([str(inputs)], tmp_path_factory.mktemp("local"))


@pytest.fixture
def engine_with(monkeypatch):
    """Make the CLI's engine take a test hook and a low band threshold."""
    def use(**options):
        monkeypatch.setattr(bcedge.cluster, "RayEngine", functools.partial(RayEngine, band_pixels=BANDS, **options))
    return use


def test_the_cluster_run_writes_what_the_local_run_writes(cluster, inputs, local_run, tmp_path, engine_with):
    log = JobLog(str(tmp_path / "jobs.jsonl"))
    engine_with(before_job=log)
    code, report, table, overlays = count([str(inputs), "--engine", "ray", "--workers", "2"], tmp_path)
    assert (code, report, table, overlays) == local_run
    assert code == 1 and [f["path"] for f in report["failed"]] == [str(inputs / "bad.png")]   # reported, as locally
    assert len(report["images"]) == 4 and len(overlays) == 4
    jobs = log.read()
    bands = [j for j in jobs if j["kind"] == "BandJob"]
    assert len({tuple(j["tiles"]) for j in bands}) > 2 and {j["name"] for j in bands} == {"c.tif"}
    assert len({j["pid"] for j in jobs}) == 2   # both workers counted


def test_a_worker_killed_mid_task_loses_nothing_and_writes_each_output_once(cluster, inputs, local_run, tmp_path,
                                                                          engine_with, monkeypatch):
    from bcedge.report import overlay

    log = JobLog(str(tmp_path / "jobs.jsonl"))
    engine_with(before_job=Hooks((log, KillOnce(str(tmp_path / "killed-b"), "b.png"),
                                  KillOnce(str(tmp_path / "killed-c"), "c.tif", kind="BandJob"))))
    written = []
    write = overlay.write_source_overlay
    monkeypatch.setattr(overlay, "write_source_overlay", lambda path, *a, **k: written.append(Path(path).name) or
                        write(path, *a, **k))
    assert count([str(inputs), "--engine", "ray", "--workers", "2"], tmp_path) == local_run
    assert (tmp_path / "killed-b").exists() and (tmp_path / "killed-c").exists()   # both kills happened
    assert sorted(written) == sorted(set(written)) and len(written) == 4            # each overlay written once
    assert not list(tmp_path.rglob("*.bcedge-tmp"))                                   # no half-written file left
    jobs = log.read()
    tries_of_b = [j["pid"] for j in jobs if j["name"] == "b.png"]
    assert len(tries_of_b) >= 2 and tries_of_b[0] != tries_of_b[-1]   # retried in another worker process
    with open(tmp_path / "c.csv", newline="") as handle:
        assert sum(row["path"].endswith("b.png") for row in csv.DictReader(handle)) == 1


def test_the_python_api_gives_the_local_results(cluster, inputs):
    paths = sorted(inputs.iterdir())
    local = list(count_files(paths, tile=(256, 256)))
    remote = list(count_files(paths, engine="ray", workers=2, band_pixels=BANDS, tile=(256, 256)))
    assert [p for p, _ in remote] == [p for p, _ in local] == paths
    for (_, mine), (_, theirs) in zip(remote, local):
        if isinstance(theirs, Exception):
            assert type(mine) is type(theirs) and str(mine) == str(theirs)
        else:
            assert mine.to_dict()["detections"] == theirs.to_dict()["detections"] and mine.scale == theirs.scale


def test_an_unreachable_address_is_a_clear_error(cluster, inputs, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = main(["count", str(inputs / "a.png"), "--engine", "ray", "--address", f"127.0.0.1:{port}", "--quiet"])
    assert code == 2
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in capsys.readouterr().err
