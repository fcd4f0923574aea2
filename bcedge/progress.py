"""Two progress bars on stderr, one for the images and one for the tiles of the image being counted.

Shown only when the stream is a terminal (tqdm), never in pipes or logs; ``write`` prints a line
without breaking the bars. ``bcedge count`` drives them locally (``bcedge.cli.progress``) and the
Ray engine from its driver (``bcedge.cluster.progress``).
"""
from __future__ import annotations

import sys
from typing import TextIO


class ImageTileBars:
    def __init__(self, images: int, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.active = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        if not self.active:
            return
        from tqdm import tqdm

        self._tqdm = tqdm
        self.images = tqdm(total=images, unit="image", file=self.stream, position=0, dynamic_ncols=True)
        self.tiles = tqdm(total=0, unit="tile", file=self.stream, position=1, leave=False, dynamic_ncols=True)

    def write(self, line: str) -> None:
        if self.active:
            self._tqdm.write(line, file=self.stream)
        else:
            print(line, file=self.stream)

    def close(self) -> None:
        if self.active:
            self.tiles.close()
            self.images.close()
