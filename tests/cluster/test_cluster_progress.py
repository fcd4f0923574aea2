"""The cluster driver's progress bars: images as they are taken, tiles of a banded image; terminals only."""
import io

import pytest

from bcedge.cluster.progress import ClusterProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream, shown", [(Terminal, True), (io.StringIO, False)])
def test_bars_follow_images_and_bands_on_a_terminal_only(stream, shown):
    out = stream()
    progress = ClusterProgress(0, stream=out)
    progress.expect(3)
    progress.image_done()
    progress.banded("slide.tif")
    progress.tiles_done(40)
    progress.image_done()
    progress.close()
    text = out.getvalue()
    assert ("2/3" in text and "image" in text and "tile" in text) == shown   # tqdm redraws the tile bar at most 10x/s
    assert (text == "") == (not shown)
