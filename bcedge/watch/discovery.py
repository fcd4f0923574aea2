"""Finding files: a folder scan, filesystem events (watchdog), and a polling fallback.

Events are hints only: every source feeds paths into the same ``StabilityTracker`` and a full
rescan runs now and then anyway (inotify drops events when its queue overflows). Network shares
(NFS, SMB, sshfs...) do not deliver events for writes made by other machines, so they are polled.
"""
from __future__ import annotations

import fnmatch
import logging
import os
import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from bcedge.report.names import escape_name

log = logging.getLogger("bcedge.watch")

TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", ".swp", "~")
NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "sshfs", "9p", "afs", "glusterfs", "ceph",
              "fuse.glusterfs", "fuse.cephfs", "davfs", "fuse.davfs2", "fuse.rclone", "fuse.s3fs", "lustre", "gpfs"}


@dataclass(frozen=True)
class PathFilter:
    """Which paths are inputs: not temporary, not hidden, not under ``exclude`` (OUT_DIR when it lies
    inside IN_DIR), not matching an ``ignore`` pattern (on the relative path or the file name)."""

    in_dir: Path
    exclude: Path | None = None
    recursive: bool = False
    ignore: tuple[str, ...] = ()

    def relative(self, path: Path) -> str | None:
        """The path's key if it is an input name, else None: POSIX, relative to IN_DIR, and escaped
        (``bcedge.report.names``), so a name that is not UTF-8 can key the state and name outputs."""
        try:
            rel = path.relative_to(self.in_dir)
        except ValueError:
            return None
        if self._excluded(path) or not rel.parts:
            return None
        if not self.recursive and len(rel.parts) > 1:
            return None
        if any(part.startswith(".") for part in rel.parts) or is_temp_name(rel.name):
            return None
        if any(fnmatch.fnmatch(rel.as_posix(), pat) or fnmatch.fnmatch(rel.name, pat) for pat in self.ignore):
            return None
        return escape_name(rel)

    def _excluded(self, path: Path) -> bool:
        return self.exclude is not None and (path == self.exclude or self.exclude in path.parents)

    def walk_dir(self, path: Path) -> bool:
        """Whether a scan should descend into ``path``."""
        return not path.name.startswith(".") and not self._excluded(path)


def is_temp_name(name: str) -> bool:
    lower = name.lower()
    return lower.startswith((".", "~$")) or lower.endswith(TEMP_SUFFIXES)


def scan(root: Path, filt: PathFilter) -> Iterator[Path]:
    """Every input file under ``root`` (recursively if the filter says so), directories sorted by name."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        log.warning("scan failed", extra={"fields": {"event": "scan_error", "path": str(root), "error": str(exc)}})
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                if filt.recursive and filt.walk_dir(path):
                    yield from scan(path, filt)
            elif entry.is_file() and filt.relative(path) is not None:
                yield path
        except OSError:
            continue


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding ``path`` from /proc/mounts (Linux), or None."""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    path = Path(os.path.realpath(path))
    best, best_len = None, -1
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = Path(fields[1].replace("\\040", " "))
        if (path == mount or mount in path.parents) and len(mount.parts) > best_len:
            best, best_len = fields[2], len(mount.parts)
    return best


def is_network_fs(path: Path) -> bool:
    return (filesystem_type(path) or "") in NETWORK_FS


class EventSource:
    """watchdog observer that turns filesystem events into ``(kind, path)`` items on a queue.

    kinds: ``seen`` (created/modified/closed), ``renamed`` (moved into place: complete), ``gone``,
    ``dir`` (a directory appeared: scan it).
    """

    def __init__(self, filt: PathFilter) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        self.events: queue.SimpleQueue[tuple[str, Path]] = queue.SimpleQueue()
        events = self.events

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                kind = event.event_type
                if kind in ("opened", "closed_no_write"):
                    return
                src = Path(os.fsdecode(event.src_path))
                if kind == "moved":
                    dest = Path(os.fsdecode(event.dest_path))
                    events.put(("gone", src))
                    events.put(("dir" if event.is_directory else "renamed", dest))
                elif kind == "deleted":
                    events.put(("gone", src))
                elif event.is_directory:
                    if kind == "created":
                        events.put(("dir", src))
                else:
                    events.put(("seen", src))

        self._observer = Observer()
        self._observer.schedule(_Handler(), str(filt.in_dir), recursive=filt.recursive)

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)

    def drain(self, limit: int = 100_000) -> list[tuple[str, Path]]:
        out = []
        while len(out) < limit:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                break
        return out


def open_events(filt: PathFilter, poll: bool | None) -> EventSource | None:
    """An started EventSource, or None when polling: asked for, a network share, no watchdog, or no inotify."""
    if poll:
        return None
    if poll is None and is_network_fs(filt.in_dir):
        log.info("network share: polling", extra={"fields": {"event": "polling", "reason": "network filesystem",
                                                            "fs": filesystem_type(filt.in_dir)}})
        return None
    try:
        source = EventSource(filt)
        source.start()
    except ImportError:
        reason = "watchdog is not installed (pip install watchdog)"
    except OSError as exc:  # e.g. inotify watch limit reached
        reason = f"filesystem events unavailable ({exc})"
    else:
        return source
    log.warning("polling instead of events", extra={"fields": {"event": "polling", "reason": reason}})
    return None
