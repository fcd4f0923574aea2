"""Progress of a cluster count: one bar for the images, one for the tiles of a huge image counted in bands.

Shown on stderr when it is a terminal (tqdm), as ``bcedge count``'s local bars; ``write`` prints a
line without breaking them. Images advance as their results are taken, in input order.
"""
from __future__ import annotations

import sys
from typing import TextIO


class ClusterProgress:
    def __init__(self, images: int, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.active = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        if not self.active:
            return
        from tqdm import tqdm

        self._tqdm = tqdm
        self.images = tqdm(total=images, unit="image", file=self.stream, position=0, dynamic_ncols=True)
        self.tiles = tqdm(total=0, unit="tile", file=self.stream, position=1, leave=False, dynamic_ncols=True)

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

    def write(self, line: str) -> None:
        if self.active:
            self._tqdm.write(line, file=self.stream)
        else:
            print(line, file=self.stream)

    def close(self) -> None:
        if self.active:
            self.tiles.close()
            self.images.close()
