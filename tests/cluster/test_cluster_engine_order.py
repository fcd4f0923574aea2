"""The engine's ordering, without Ray: workers finishing out of order, images sent with a guessed scale
history, and still exactly the local run's results, once each, in input order."""
import numpy as np
import pytest

from bcedge.cluster import count_files
from bcedge.cluster.engine import RayEngine
from bcedge.cluster.pool import Task
from bcedge.cluster.worker import CounterSpec, CountWorker
from bcedge.data.synth import generate_smear


class BackwardsPool:
    """Two 'workers' in this process; of the tasks waited on, the last sent finishes first."""

    def __init__(self, worker: CountWorker) -> None:
        self.worker, self.actors, self.sent = worker, [0, 1], []

    def submit(self, method, job):
        self.sent.append(job)
        return Task(method, job, value=getattr(self.worker, method)(job))

    def wait(self, tasks, timeout=None):
        task = [t for t in tasks if not t.settled][-1]
        task.settled = True
        return [task]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("order")
    paths = []
    for k, (w, h) in enumerate([(800, 600), (1000, 760), (640, 480), (960, 720), (720, 540)]):
        paths.append(folder / f"{k}.png")
        generate_smear(w, h, seed=20 + k, out=paths[-1])
    (folder / "bad.png").write_bytes(b"BM not a bitmap")
    return paths[:2] + [folder / "bad.png"] + paths[2:]


def test_out_of_order_speculative_counts_end_as_the_local_run(images):
    local = list(count_files(images))
    engine = RayEngine("default")
    engine.pool = BackwardsPool(CountWorker(CounterSpec("default")))
    got = list(engine.count(images))
    assert [p for p, _ in got] == images
    for (_, mine), (_, theirs) in zip(got, local):
        if isinstance(theirs, Exception):
            assert type(mine) is type(theirs) and str(mine) == str(theirs)
            continue
        assert np.array_equal(mine.detections.xyxy, theirs.detections.xyxy) and mine.scale == theirs.scale
    recounted = len(engine.pool.sent) - len(images)
    assert recounted > 0   # these smears' scales differ: some guesses were wrong, and were counted again
    assert len({s.history for s in engine.pool.sent if s.index == 0}) == 1   # the first image went alone, once
