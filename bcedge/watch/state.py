"""The service's memory: one SQLite row per input file, in OUT_DIR, in WAL mode.

A row moves ``processing -> done | quarantined | failed | pending``. ``processing`` is written
before the model runs and ``done`` only after the result file is in place, so after a crash
(kill -9) a ``processing`` row means "redo it": the result file is simply overwritten, nothing is
counted twice. A row is final (``done``/``quarantined``) for one content hash; a new hash under the
same path is new work. Transient causes are retried a bounded number of times, counted here so a
restart does not forget them: ``attempts`` counts claims of the same content (a file unreadable
for a while, or still being written, goes back to ``pending`` until it runs out), ``crashes`` the
times the service died while counting it (a file that kills the process is quarantined instead of
crashing the service forever; one that was merely in flight during a kill is retried).

Every write that fails because OUT_DIR is full or read-only raises ``OutputUnavailable`` with
SQLite's own message ("database or disk is full"), never a failed rollback's.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from bcedge.watch.completeness import Signature

FINAL = ("done", "quarantined")
ADDED_COLUMNS = {"crashes": "INTEGER NOT NULL DEFAULT 0", "flags": "TEXT", "tiles": "INTEGER",  # since bcedge 0.1
                 "scale": "TEXT", "tile": "TEXT"}
SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, sha256 TEXT,
    status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, error TEXT, message TEXT,
    counts TEXT, total INTEGER, width INTEGER, height INTEGER, updated REAL,
    crashes INTEGER NOT NULL DEFAULT 0, flags TEXT, tiles INTEGER, scale TEXT, tile TEXT);
CREATE INDEX IF NOT EXISTS files_status ON files(status);
CREATE TABLE IF NOT EXISTS quarantine_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT, error TEXT, message TEXT, size INTEGER,
    sha256 TEXT, time REAL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


class StateError(RuntimeError):
    """The state database cannot be used (another IN_DIR, corrupt, closed)."""


class OutputUnavailable(OSError):
    """OUT_DIR cannot take writes now (full, read-only, gone): wait and retry, nothing is the input's fault."""


@dataclass
class FileRow:
    path: str
    size: int | None
    mtime_ns: int | None
    inode: int | None
    sha256: str | None
    status: str
    attempts: int
    error: str | None
    message: str | None
    counts: dict[str, int] | None
    total: int | None
    width: int | None
    height: int | None
    updated: float | None
    crashes: int = 0
    flags: list[str] | None = None
    tiles: int | None = None
    scale: dict[str, Any] | None = None   # how the image was brought to the model's scale (``report.counts``)
    tile: str | None = None               # the tile size, "WxH"

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def same_file(self, sig: Signature) -> bool:
        return (self.size, self.mtime_ns, self.inode) == tuple(sig)


class StateDB:
    """Thread-safe (one connection behind a lock) access to OUT_DIR's state database."""

    def __init__(self, path: Path, in_dir: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = None
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._add_columns()
        except sqlite3.DatabaseError as exc:
            if self._db is not None:
                self._db.close()
            if isinstance(exc, sqlite3.OperationalError):  # full, read-only, I/O: OUT_DIR's state, not the file's
                raise OutputUnavailable(f"{path}: {exc}") from exc
            raise StateError(f"{path}: state database unusable ({exc}); move it away to start afresh") from exc
        known = self._meta("in_dir")
        if known is None:
            self._set_meta("in_dir", str(in_dir))
        elif known != str(in_dir):
            raise StateError(f"{path}: this OUT_DIR holds the state of another input folder ({known}); "
                             f"use a new --out for {in_dir}")

    # -- plumbing -----------------------------------------------------------------------------------
    def _add_columns(self) -> None:
        """Columns newer than an existing database get added (its rows keep their values)."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(files)")}
        for name, kind in ADDED_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE files ADD COLUMN {name} {kind}")

    def _exec(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            if self._db is None:
                raise StateError(f"{self.path}: state database is closed")
            return self._db.execute(sql, args)

    def _write(self, statements: list[tuple[str, tuple]]) -> sqlite3.Cursor:
        """Run statements in one transaction; return the last cursor."""
        with self._lock:
            if self._db is None:
                raise StateError(f"{self.path}: state database is closed")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                cur = None
                for sql, args in statements:
                    cur = self._db.execute(sql, args)
                self._db.execute("COMMIT")
                return cur
            except BaseException as exc:
                if self._db.in_transaction:  # SQLite rolls back by itself when the disk is full
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                if isinstance(exc, sqlite3.OperationalError):
                    raise OutputUnavailable(f"{self.path}: {exc}") from exc
                raise

    def _meta(self, key: str) -> str | None:
        row = self._exec("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._write([("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- reading --------------------------------------------------------------------------------------
    _COLUMNS = ", ".join(FileRow.__dataclass_fields__)

    @staticmethod
    def _row(values: tuple) -> FileRow:
        row = FileRow(*values)
        row.counts = json.loads(row.counts) if row.counts else None
        row.flags = json.loads(row.flags) if row.flags else []
        row.scale = json.loads(row.scale) if row.scale else None
        return row

    def lookup(self, path: str) -> FileRow | None:
        values = self._exec(f"SELECT {self._COLUMNS} FROM files WHERE path=?", (path,)).fetchone()
        return self._row(values) if values else None

    def rows(self, *statuses: str) -> Iterator[FileRow]:
        """Rows with these statuses (all if none), ordered by path, read in one snapshot."""
        where = f" WHERE status IN ({','.join('?' * len(statuses))})" if statuses else ""
        values = self._exec(f"SELECT {self._COLUMNS} FROM files{where} ORDER BY path", statuses).fetchall()
        return (self._row(v) for v in values)

    def status_counts(self) -> dict[str, int]:
        return dict(self._exec("SELECT status, COUNT(*) FROM files GROUP BY status").fetchall())

    def quarantine_events(self) -> list[dict[str, Any]]:
        """The latest quarantine event of each file quarantined now (a file counted since is not listed)."""
        cols = ("path", "error", "message", "size", "sha256", "time")
        values = self._exec(
            f"SELECT {', '.join('q.' + c for c in cols)} FROM quarantine_log q JOIN files f ON f.path = q.path "
            "WHERE f.status = 'quarantined' AND q.id IN (SELECT MAX(id) FROM quarantine_log GROUP BY path) "
            "ORDER BY q.id").fetchall()
        return [dict(zip(cols, v)) for v in values]

    def suspects(self) -> set[str]:
        """Files not finished that were in flight when the service died: counted alone, after the others."""
        return {r[0] for r in self._exec("SELECT path FROM files WHERE crashes > 0 AND status NOT IN "
                                         f"({', '.join(repr(s) for s in FINAL)})").fetchall()}

    def probe(self) -> None:
        """A small write: raises ``OutputUnavailable`` while the database cannot take writes."""
        self._set_meta("probe", str(time.time()))

    # -- transitions ----------------------------------------------------------------------------------
    def recover(self, max_attempts: int) -> dict[str, list[str]]:
        """After a crash: each ``processing`` row has one more crash (the claim is not an attempt) and goes
        back to ``pending``, or is quarantined once it has ``max_attempts`` crashes (the file kills the
        process). Returns both lists."""
        stuck = list(self.rows("processing"))
        self._write([("UPDATE files SET status='pending', crashes=crashes + 1, attempts=MAX(attempts - 1, 0) "
                      "WHERE path=?", (r.path,)) for r in stuck])
        poison = [r for r in stuck if r.crashes + 1 >= max_attempts]
        for row in poison:
            self.mark_quarantined(row.path, "ProcessCrashed",
                                  f"{row.path}: the service died {row.crashes + 1} times while counting this file")
        return {"redo": [r.path for r in stuck if r not in poison], "quarantined": [r.path for r in poison]}

    def touch(self, path: str, sig: Signature) -> None:
        """Same content under a new size/mtime/inode (copied back, touched): remember the new stat."""
        self._write([("UPDATE files SET size=?, mtime_ns=?, inode=?, updated=? WHERE path=?",
                      (*sig, time.time(), path))])

    def claim(self, path: str, sig: Signature, sha256: str | None) -> int:
        """Mark ``path`` processing for this content; returns the attempt number (1 for new content)."""
        now = time.time()
        self._write([(
            "INSERT INTO files(path, size, mtime_ns, inode, sha256, status, attempts, updated) "
            "VALUES (?, ?, ?, ?, ?, 'processing', 1, ?) ON CONFLICT(path) DO UPDATE SET "
            "attempts = CASE WHEN files.sha256 IS excluded.sha256 AND files.status != 'done' "
            "THEN files.attempts + 1 ELSE 1 END, "
            "crashes = CASE WHEN files.sha256 IS excluded.sha256 THEN files.crashes ELSE 0 END, "
            "size=excluded.size, mtime_ns=excluded.mtime_ns, inode=excluded.inode, sha256=excluded.sha256, "
            "status='processing', error=NULL, message=NULL, counts=NULL, total=NULL, width=NULL, height=NULL, "
            "updated=excluded.updated", (path, *sig, sha256, now))])
        return self._exec("SELECT attempts FROM files WHERE path=?", (path,)).fetchone()[0]

    def mark_done(self, path: str, counts: dict[str, int], total: int, size: tuple[int, int],
                  flags: list[str] | None = None, tiles: int | None = None, scale: dict[str, Any] | None = None,
                  tile: str | None = None) -> None:
        self._write([("UPDATE files SET status='done', counts=?, total=?, width=?, height=?, flags=?, tiles=?, "
                      "scale=?, tile=?, error=NULL, message=NULL, attempts=0, crashes=0, updated=? WHERE path=?",
                      (json.dumps(counts), int(total), int(size[0]), int(size[1]), json.dumps(list(flags or [])),
                       tiles, json.dumps(scale) if scale else None, tile, time.time(), path))])

    def mark_quarantined(self, path: str, error: str, message: str) -> dict[str, Any]:
        """Quarantine ``path`` and log the event in the same transaction; returns the event."""
        now = time.time()
        row = self.lookup(path)
        size, sha = (row.size, row.sha256) if row else (None, None)
        self._write([
            ("UPDATE files SET status='quarantined', error=?, message=?, counts=NULL, total=NULL, "
             "attempts=0, updated=? WHERE path=?", (error, message, now, path)),
            ("INSERT INTO quarantine_log(path, error, message, size, sha256, time) VALUES (?, ?, ?, ?, ?, ?)",
             (path, error, message, size, sha, now)),
        ])
        return {"path": path, "error": error, "message": message, "size": size, "sha256": sha, "time": now}

    def mark_retry(self, path: str, error: str, message: str) -> None:
        """A transient cause (unreadable for now, still being written): pending again, the attempt kept."""
        self._write([("UPDATE files SET status='pending', error=?, message=?, updated=? WHERE path=?",
                      (error, message, time.time(), path))])

    def mark_failed(self, path: str, error: str, message: str) -> None:
        """Not the input's fault (a counter bug, a full disk): retried when the service restarts."""
        self._write([("UPDATE files SET status='failed', error=?, message=?, updated=? WHERE path=?",
                      (error, message, time.time(), path))])

    def release(self, path: str) -> None:
        """Undo a claim that did not finish (shutdown, file changed while read): not a crash attempt."""
        self._write([("UPDATE files SET status='pending', attempts=MAX(attempts - 1, 0), updated=? "
                      "WHERE path=? AND status='processing'", (time.time(), path))])
