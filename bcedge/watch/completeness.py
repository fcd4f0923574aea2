"""Is a file completely written? Two signals, then a format check before the model sees it.

1. ``StabilityTracker``: a file is ready once its (size, mtime, inode) has not changed for ``settle``
   seconds, or at once when the writer renamed it into place from a temporary name.
2. ``precheck``: the bytes themselves: not empty, an image signature we know, the format's end
   marker present (PNG ``IEND``, JPEG ``EOI``, BMP and WebP declared size), and a pixel cap read from the
   header (``ImageTooLarge``: a 1-gigapixel file would hold a worker for many minutes). A truncated file is quarantined; if its writer later finishes it, the new
   size/content makes the service process it again.
"""
from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

from bcedge.imageio import ImageReadError, megapixels
from bcedge.runtime.sources import ImageTooLarge


class EmptyFile(ImageReadError):
    """The file has zero bytes."""


class NotAnImage(ImageReadError):
    """The file does not start with the signature of any image format bcedge reads."""


class TruncatedImage(ImageReadError):
    """The image's end marker is missing: the file was cut short."""


class Signature(NamedTuple):
    size: int
    mtime_ns: int
    inode: int


def signature(path: str | Path) -> Signature | None:
    """(size, mtime_ns, inode) of a regular file, or None when it is gone or not a file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return Signature(st.st_size, st.st_mtime_ns, st.st_ino)


def readable(path: str | Path) -> bool:
    """Whether this process can read the file now (a permission fixed by chmod changes no signature)."""
    try:
        with open(path, "rb") as handle:
            handle.read(1)
        return True
    except OSError:
        return False


@dataclass
class _Candidate:
    sig: Signature
    since: float


class StabilityTracker:
    """Files seen but not yet ready; ``poll()`` re-stats the ones due and returns those that settled.

    A file is stat'ed once when seen and again ``settle`` seconds later: mtime only moves forward,
    so an equal (size, mtime_ns, inode) means nothing was written in between. A changed file goes to
    the back of the queue with a new deadline, which keeps the queue in deadline order: ``poll``
    stops at the first file not yet due, so a backlog of 100k files costs little per call.
    """

    def __init__(self, settle: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.settle = settle
        self.clock = clock
        self._files: dict[Path, _Candidate] = {}
        self._renamed: dict[Path, None] = {}  # renamed into place: complete, ready at once

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, path: Path) -> bool:
        return path in self._files

    def observe(self, path: Path, renamed: bool = False) -> None:
        """Start tracking ``path`` (no-op if already tracked, except that a rename marks it complete)."""
        if path not in self._files:
            sig = signature(path)
            if sig is None:
                return
            self._files[path] = _Candidate(sig, self.clock())
        if renamed:
            self._renamed[path] = None

    def forget(self, path: Path) -> None:
        self._files.pop(path, None)
        self._renamed.pop(path, None)

    def poll(self, limit: int | None = None) -> list[Path]:
        """Ready files, renamed ones first, then by deadline (at most ``limit``); they stop being tracked."""
        now = self.clock()
        limit = len(self._files) if limit is None else limit
        ready = [p for p in list(self._renamed)[:limit] if signature(p) is not None]
        gone = [p for p in list(self._renamed)[:limit] if p not in ready]
        changed: list[tuple[Path, Signature]] = []
        for path, cand in self._files.items():
            if len(ready) >= limit or now - cand.since < self.settle:
                break
            if path in self._renamed:
                continue
            sig = signature(path)
            if sig is None:
                gone.append(path)
            elif sig != cand.sig:
                changed.append((path, sig))
            else:
                ready.append(path)
        for path in ready + gone:
            self.forget(path)
        for path, sig in changed:
            del self._files[path]
            self._files[path] = _Candidate(sig, now)
        return ready


# -- format checks: one entry per format -------------------------------------------------------------

def _png_complete(handle, size: int) -> bool:
    # the IEND chunk is last; a little slack for writers that append bytes after it
    handle.seek(max(0, size - 4096))
    return b"IEND\xaeB`\x82" in handle.read(4096)


def _jpeg_complete(handle, size: int) -> bool:
    # 0xFF in entropy-coded data is stuffed as FF00, so FFD9 near the end is the end-of-image marker
    # (some cameras pad or append a little after it).
    handle.seek(max(0, size - 4096))
    return b"\xff\xd9" in handle.read(4096)


def _declared_length(handle, offset: int) -> int | None:
    """The little-endian uint32 at ``offset``: a header's statement of the file's length; None if the file ends first."""
    handle.seek(offset)
    field = handle.read(4)
    return struct.unpack("<I", field)[0] if len(field) == 4 else None


def _bmp_complete(handle, size: int) -> bool:
    declared = _declared_length(handle, 2)
    return declared is not None and (declared == 0 or size >= declared)  # 0: writers that do not fill the field


def _webp_complete(handle, size: int) -> bool:
    declared = _declared_length(handle, 4)   # RIFF: the length after these first 8 bytes
    return declared is not None and size >= declared + 8


def _unchecked(handle, size: int) -> bool:
    return True  # TIFF has no end marker; the decoder reports a cut file


_FORMATS: dict[str, tuple[tuple[bytes, ...], Callable]] = {
    "png": ((b"\x89PNG\r\n\x1a\n",), _png_complete),
    "jpeg": ((b"\xff\xd8\xff",), _jpeg_complete),
    "bmp": ((b"BM",), _bmp_complete),
    "webp": ((b"RIFF",), _webp_complete),
    "tiff": ((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), _unchecked),
}


def sniff_format(head: bytes) -> str | None:
    """The format name whose signature ``head`` starts with, or None."""
    for name, (magics, _) in _FORMATS.items():
        if any(head.startswith(m) for m in magics):
            return name
    return None


def precheck(path: str | Path, max_pixels: int | None = None) -> str:
    """Raise a named ImageReadError if ``path`` is empty, not an image, cut short or over ``max_pixels``.

    Returns the format name. Reads only the first and last few KB.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise EmptyFile(f"{path}: file is empty (zero bytes)")
    with open(path, "rb") as handle:
        head = handle.read(16)
        fmt = sniff_format(head)
        if fmt is None:
            raise NotAnImage(f"{path}: not an image (starts with {head[:8]!r}; expected PNG, JPEG, TIFF, BMP or WebP)")
        if not _FORMATS[fmt][1](handle, size):
            raise TruncatedImage(f"{path}: truncated {fmt.upper()} ({size} bytes, end marker missing)")
    if max_pixels:
        from bcedge.data.imagesize import image_size

        width, height = image_size(path)
        if width * height > max_pixels:
            raise ImageTooLarge(f"{path}: {width}x{height} = {megapixels(width * height)} Mpx is over the "
                                f"{megapixels(max_pixels)} Mpx cap")
    return fmt
