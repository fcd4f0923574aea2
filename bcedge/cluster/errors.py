"""What can go wrong on a cluster, said in words a user can act on."""
from __future__ import annotations

INSTALL_HINT = "pip install 'bcedge[cluster]'"


class ClusterError(RuntimeError):
    """The cluster cannot be used: Ray is not installed, the address does not answer, no worker starts."""


class WorkerLost(RuntimeError):
    """The worker counting an image died on every try (killed, out of memory): the image is reported, not counted."""


def require_ray():
    """The ``ray`` module, or ``ClusterError`` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray
