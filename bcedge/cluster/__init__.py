"""Counting on a Ray cluster: archives of images, and whole-slide images cut into bands.

    from bcedge.cluster import count_files
    for path, outcome in count_files(paths, engine="ray", address="ray-head:6379"):
        ...   # a CountResult (as Counter.count_file gives), or the exception a bad image raised

``engine="local"`` counts with one ``Counter`` here; ``engine="ray"`` with ``RayEngine``
(``bcedge.cluster.engine``), whose results are the local ones: same detections, same counts.
Ray is the optional extra ``cluster`` (``pip install 'bcedge[cluster]'``) and is imported only
when a cluster is used; importing this package needs neither Ray nor torch.
"""
from __future__ import annotations

from bcedge.cluster.api import ENGINES, count_files
from bcedge.cluster.errors import INSTALL_HINT, ClusterError, WorkerLost

__all__ = ["ENGINES", "INSTALL_HINT", "ClusterError", "RayEngine", "WorkerLost", "count_files"]


def __getattr__(name: str):
    if name == "RayEngine":
        from bcedge.cluster.engine import RayEngine

        return RayEngine
    raise AttributeError(f"module 'bcedge.cluster' has no attribute {name!r}")
