"""Joining a Ray cluster, or starting a local one, with a clear error instead of a hang.

``ray.init(address=...)`` retries an address that does not answer for minutes; a plain TCP
connection first turns that into one line naming the address.
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from bcedge.cluster.errors import ClusterError, require_ray

CONNECT_TIMEOUT_S = 5.0
DEFAULT_PORTS = {"ray": 10001, "": 6379}   # Ray Client (ray://), the cluster's GCS


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (or ``ray://host:port``, default ports as Ray's) -> (host, port)."""
    scheme, _, rest = address.rpartition("://")
    host, _, port = rest.rstrip("/").rpartition(":")
    if not host:
        host, port = rest.rstrip("/"), ""
    try:
        return host.strip("[]"), int(port) if port else DEFAULT_PORTS.get(scheme, 6379)
    except ValueError:
        raise ClusterError(f"--address {address!r}: expected HOST:PORT, e.g. ray-head:6379 or ray://ray-head:10001") from None


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """``ClusterError`` unless something answers at ``address`` within ``timeout`` seconds."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ClusterError(f"no Ray cluster answers at {address} ({why}): start one there with "
                           f"`ray start --head --port={port}`, or leave out --address to start a local one") from None


@contextmanager
def ray_session(address: str | None = None, cpus: int | None = None,
                object_store_bytes: int | None = None) -> Iterator[object]:
    """The ``ray`` module, connected: to ``address`` (``auto``: the cluster this machine is part of),
    else to a local cluster started here with ``cpus`` CPUs. A session already open (a notebook's,
    a test's) is used as it is and left open; one started here is shut down at the end."""
    ray = require_ray()
    if address and address != "auto":
        check_reachable(address)
    if ray.is_initialized():
        yield ray
        return
    options = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    if not address:
        options.update(num_cpus=cpus, object_store_memory=object_store_bytes)
    try:
        ray.init(address=address or None, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot join the Ray cluster at {address or 'a new local cluster'}: {exc}") from None
    try:
        yield ray
    finally:
        ray.shutdown()
