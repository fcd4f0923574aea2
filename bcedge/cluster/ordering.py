"""Why results come back in order, and why they equal the local run's although images are counted in parallel.

A ``Counter`` estimating scales (``cell_size="auto"``) guesses each image's scale from the images
before it (the median of its last few estimates; ``bcedge.runtime.scale``), so an image's count can
depend on what came before it. Workers count ahead speculatively: each image goes out with the
history the driver knows when it is sent (``bcedge.runtime.scale.History``), and comes back with the
history it was counted with and the one it leaves. The driver takes results in input order; an image
sent with a history that gives a different guess than the true one (the history its predecessors
actually left) is counted again with the true one. Images from one rig share a scale, so this is rare: the first image is counted
alone, and afterwards the guess seldom changes.

Results are taken once each, in order: a late duplicate of a retried or recounted job is dropped.
"""
from __future__ import annotations

from bcedge.runtime.scale import History


def same_guess(a: History, b: History) -> bool:
    """Whether two histories give a ``Counter`` the same first guess for any image: the median of the remembered
    scales, kept for an image of the last one's frame size (other sizes also read the image's thumbnail, the same
    on any worker); with none, the thumbnail's reading."""
    if a == b:
        return True
    return bool(a) and bool(b) and a.guess == b.guess and a.frame == b.frame


class InOrder:
    """Outcomes by input index, handed out in index order, each index once."""

    def __init__(self) -> None:
        self.next = 0
        self._waiting: dict[int, object] = {}

    def add(self, index: int, outcome: object) -> None:
        if index >= self.next:
            self._waiting.setdefault(index, outcome)

    def peek(self) -> object | None:
        """The outcome of the next index, if it has come."""
        return self._waiting.get(self.next)

    def drop_next(self) -> None:
        """Forget the next index's outcome (it is to be counted again)."""
        self._waiting.pop(self.next, None)

    def take(self) -> object:
        outcome = self._waiting.pop(self.next)
        self.next += 1
        return outcome
