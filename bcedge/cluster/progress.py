"""Progress of a cluster count: one bar for the images, one for the tiles of a huge image counted in bands.

Shown on stderr when it is a terminal (tqdm), as ``bcedge count``'s local bars; ``write`` prints a
line without breaking them. Images advance as their results are taken, in input order.
"""
from __future__ import annotations

from bcedge.progress import ImageTileBars


class ClusterProgress(ImageTileBars):
    def expect(self, images: int) -> None:
        if self.active:
            self.images.reset(total=images)

    def image_done(self) -> None:
        if self.active:
            self.images.update(1)

    def banded(self, name: str) -> None:
        """A huge image is counted in bands from now on: the tile bar follows its passes."""
        if self.active:
            self.tiles.reset(total=None)
            self.tiles.set_description(f"{name} (bands)", refresh=False)

    def tiles_done(self, count: int) -> None:
        if self.active:
            self.tiles.update(count)
