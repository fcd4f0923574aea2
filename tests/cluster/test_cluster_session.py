"""An address that does not answer is one clear line, at once, not minutes of Ray's retries."""
import socket
import time

import pytest

from bcedge.cluster.errors import ClusterError
from bcedge.cluster.session import check_reachable, split_address


def test_addresses_are_split_with_ray_default_ports():
    assert split_address("ray-head:6380") == ("ray-head", 6380)
    assert split_address("ray://head.lab:10002") == ("head.lab", 10002)
    assert split_address("ray://head.lab") == ("head.lab", 10001)
    assert split_address("head.lab") == ("head.lab", 6379)
    with pytest.raises(ClusterError, match="HOST:PORT"):
        split_address("head.lab:port")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_address_nobody_listens_on_is_a_clear_error_within_seconds():
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(ClusterError, match=f"no Ray cluster answers at 127.0.0.1:{port}.*ray start --head"):
        check_reachable(f"127.0.0.1:{port}", timeout=2)
    assert time.monotonic() - started < 5


def test_a_listening_address_passes():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}", timeout=2)
