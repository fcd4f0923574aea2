"""Progress of long counting: one bar for the images, one for the tiles of the image being counted.

Shown on stderr when it is a terminal (tqdm), never in pipes or logs; ``--quiet`` turns it off.
Tiles are counted as the backend finishes them: the bar wraps the counter's backend (the same
``infer`` interface), so it needs nothing from the counter's insides.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TextIO

from bcedge.progress import ImageTileBars


class _TileCounting:
    """A backend that reports how many tiles each ``infer`` call finished, and is otherwise the backend."""

    def __init__(self, backend: Any, on_tiles: Callable[[int], Any]) -> None:
        self._backend, self._on_tiles = backend, on_tiles

    def infer(self, batch):
        outputs = self._backend.infer(batch)
        self._on_tiles(len(batch))
        return outputs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


class CountProgress(ImageTileBars):
    """``with CountProgress(counter, n) as progress: progress.count_file(path, name)``; ``write`` prints a
    line without breaking the bars."""

    def __init__(self, counter: Any, images: int, enabled: bool = True, stream: TextIO | None = None) -> None:
        super().__init__(images, enabled, stream)
        self.counter = counter
        if not self.active:
            return
        self._backend = counter.backend
        counter.backend = _TileCounting(self._backend, self.tiles.update)

    def _tiles_of(self, path: Path) -> int | None:
        from bcedge.data.imagesize import image_size

        try:
            return len(self.counter.plan(*image_size(path)))
        except Exception:  # noqa: BLE001 - unreadable headers are the counter's to report
            return None

    def count_file(self, path: Path, name: str) -> Any:
        if not self.active:
            return self.counter.count_file(path)
        self.tiles.reset(total=self._tiles_of(path))
        self.tiles.set_description(name, refresh=False)
        try:
            return self.counter.count_file(path)
        finally:
            self.images.update(1)

    def __enter__(self) -> "CountProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        if self.active:
            self.counter.backend = self._backend
