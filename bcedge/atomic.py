"""Writing files atomically: a reader, or a crash, sees the old file or the new one, never half of one.

Every writer in bcedge goes through here, so temporary files have one name everywhere:
``.<name>.<pid>-<random>.bcedge-tmp``, beside their target (a rename never crosses filesystems),
hidden (folder scans skip it) and recognisable (``remove_stale_temps`` clears what a crash left
behind without knowing who wrote it).

    atomic_write_json(path, doc)                    # small files, in one call
    with atomic_open(path, "w") as handle: ...      # a stream (csv, json.dump)
    with atomic_path(path) as tmp: writer(tmp)      # libraries that want a file name (tifffile)
    out = AtomicFile(path); out.write(...); out.commit()   # written over many calls

``durable=True`` also fsyncs the file and its folder, so the new file survives a power cut.
An error names the target, never the temporary file.
"""
from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

TEMP_SUFFIX = ".bcedge-tmp"


def temp_path(path: str | Path) -> Path:
    """A fresh temporary name beside ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")


def is_temp(path: str | Path) -> bool:
    """Whether ``path`` is named like one of our temporary files."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def _naming_target(exc: OSError, path: Path, tmp: Path | None = None) -> OSError:
    """The same error (same errno, same subclass) naming ``path``, when it was about the temporary file
    (or about no file: a write, a rename); an error about another file (an input) is left alone."""
    if exc.errno is None or (tmp is not None and exc.filename not in (None, str(tmp), tmp)):
        return exc
    return OSError(exc.errno, exc.strerror, str(path))


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; nothing to sync there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _publish(tmp: Path, path: Path, durable: bool) -> None:
    if durable:
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
    os.replace(tmp, path)
    if durable:
        _fsync_folder(path.parent)


@contextmanager
def atomic_path(path: str | Path, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; what was written there replaces ``path`` when the block
    ends without an error, and is deleted otherwise. Parent folders are created."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _naming_target(exc, path) from exc
    tmp = temp_path(path)
    try:
        yield tmp
        _publish(tmp, path, durable)
    except OSError as exc:
        _discard(tmp)
        raise _naming_target(exc, path, tmp) from exc
    except BaseException:
        _discard(tmp)
        raise


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", durable: bool = False, encoding: str | None = None,
                newline: str | None = None) -> Iterator[IO]:
    """``open`` for writing (``w`` or ``wb``), published atomically at the end of the block."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with atomic_path(path, durable) as tmp, open(tmp, mode, encoding=encoding, newline=newline) as handle:
        yield handle


class AtomicFile:
    """A binary file written over many calls (a streaming encoder): ``commit()`` publishes it under
    its name, ``abort()`` drops it. Until then it is a temporary file beside ``path``."""

    def __init__(self, path: str | Path, durable: bool = False) -> None:
        self.path, self.durable = Path(path), durable
        self.tmp = temp_path(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle: IO[bytes] = open(self.tmp, "wb")
        except OSError as exc:
            raise _naming_target(exc, self.path, self.tmp) from exc

    def write(self, data: bytes) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.abort()
            raise _naming_target(exc, self.path, self.tmp) from exc

    def commit(self) -> Path:
        try:
            self.handle.close()
            _publish(self.tmp, self.path, self.durable)
        except OSError as exc:
            self.abort()
            raise _naming_target(exc, self.path, self.tmp) from exc
        return self.path

    def abort(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        _discard(self.tmp)

    @property
    def closed(self) -> bool:
        return self.handle.closed


def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = True) -> Path:
    with atomic_open(path, "wb", durable) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, durable: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), durable)


def atomic_write_json(path: str | Path, obj: Any, durable: bool = True, indent: int | None = 1) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n", durable)


def _discard(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def check_writable(path: str | Path, folder: bool = False) -> Path:
    """Fail now, naming ``path``, if it cannot be written later: its folder (``path`` itself when
    ``folder``) is created if missing and must take a new file; an existing target must not be a folder.
    Call it before long work, so a bad output path does not waste it."""
    path = Path(path)
    target_dir = path if folder else path.parent
    if not folder and path.is_dir():
        raise IsADirectoryError(21, "is a folder, not a file", str(path))
    if folder and path.exists() and not path.is_dir():
        raise NotADirectoryError(20, "is a file, not a folder", str(path))
    above = next((parent for parent in target_dir.absolute().parents if parent.exists()), None)
    if target_dir.exists() and not target_dir.is_dir() or above is not None and not above.is_dir():
        blocking = target_dir if target_dir.exists() else above
        raise NotADirectoryError(20, f"cannot be written: {blocking} is a file, not a folder", str(path))
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        probe = temp_path(target_dir / "probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _naming_target(exc, path) from exc
    return path


def remove_stale_temps(folder: str | Path) -> int:
    """Delete the temporary files a crash left under ``folder`` (recursively); returns how many.
    Only safe while no writer is running there (the watch service holds its OUT_DIR lock)."""
    removed = 0
    for tmp in Path(folder).rglob(f".*{TEMP_SUFFIX}"):
        try:
            tmp.unlink()
            removed += 1
        except OSError:
            pass
    return removed
