"""The SQLite trace sink (the default): the chain in one WAL-mode file, appends under BEGIN IMMEDIATE."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from charter.sqlite_wal import enable_wal
from charter.trace.record import GENESIS
from charter.trace.sink import (
    CHECKPOINT_FIELDS,
    INDEX_SQL,
    Build,
    Sign,
    StoredRow,
    TraceError,
    checked_bodies,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS trace (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  kind TEXT NOT NULL,
  at REAL NOT NULL,
  outcome TEXT,
  agent TEXT,
  rules TEXT,
  ref TEXT,
  prev TEXT NOT NULL,
  hash TEXT NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS trace_id ON trace(id);
CREATE INDEX IF NOT EXISTS trace_ref ON trace(ref);
CREATE TABLE IF NOT EXISTS checkpoints (
  length INTEGER NOT NULL,
  head TEXT NOT NULL,
  at REAL NOT NULL,
  signature TEXT NOT NULL,
  public_key TEXT NOT NULL
);
"""

_HEAD = "SELECT seq, hash FROM trace ORDER BY seq DESC LIMIT 1"


class SqliteSink:
    """One connection; every append is one ``BEGIN IMMEDIATE`` transaction that re-reads the head,
    so several processes appending to the same file still make one linear chain."""

    def __init__(self, path: str) -> None:
        self.location = path
        self.display = path
        self._lock = threading.Lock()
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
        enable_wal(self.conn, 30.0)
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)

    def head(self) -> tuple[int, str]:
        with self._lock:
            row = self.conn.execute(_HEAD).fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    def append(self, build: Build) -> tuple[int, str]:
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                row = self.conn.execute(_HEAD).fetchone()
                rows, seq, head = build(*((row[0], row[1]) if row else (0, GENESIS)))
                self.conn.executemany("INSERT INTO trace VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
                self.conn.execute("COMMIT")
            except sqlite3.Error:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise
        return seq, head

    def add_checkpoint(self, sign: Sign) -> dict[str, Any]:
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                row = self.conn.execute(_HEAD).fetchone()
                cp = sign(*((row[0], row[1]) if row else (0, GENESIS)))
                self.conn.execute(
                    "INSERT INTO checkpoints VALUES (?,?,?,?,?)", tuple(cp[k] for k in CHECKPOINT_FIELDS)
                )
                self.conn.execute("COMMIT")
            except sqlite3.Error:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise
        return cp

    def problem(self) -> str | None:
        p = Path(self.location)
        return None if os.access(p if p.exists() else p.parent, os.W_OK) else f"{p} is not writable"

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()


class SqliteReader:
    """A read-only connection to a trace file (FileNotFoundError if it does not exist)."""

    def __init__(self, path: str) -> None:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"no trace log at {path}")
        if not p.is_file():  # a device or FIFO would be opened (and /dev/zero read) as a database
            raise TraceError(f"{path} is not a trace log (not a regular file)")
        self.conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError:  # any file at all can be named: "file is not a database"
            tables = set()
        if "trace" not in tables:
            self.conn.close()
            raise TraceError(f"{path} is not a trace log (no trace tables)")

    def rows(self) -> Iterator[StoredRow]:
        for seq, prev, h, body, *index in self.conn.execute(
            f"SELECT seq, prev, hash, body, {INDEX_SQL} FROM trace ORDER BY seq"
        ):
            yield seq, prev, h, body, tuple(index)

    def batch(self, after: int, limit: int) -> list[StoredRow]:
        # no transaction is left open between calls (autocommit reads): each sees the latest commit
        cur = self.conn.execute(
            f"SELECT seq, prev, hash, body, {INDEX_SQL} FROM trace WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [(seq, prev, h, body, tuple(index)) for seq, prev, h, body, *index in cur]

    def checkpoints(self) -> list[dict[str, Any]]:
        cur = self.conn.execute(f"SELECT {', '.join(CHECKPOINT_FIELDS)} FROM checkpoints ORDER BY rowid")
        return [dict(zip(CHECKPOINT_FIELDS, r, strict=True)) for r in cur]

    def bodies(
        self, where: Sequence[str], args: Sequence[Any], *, newest_first: bool, limit: int | None
    ) -> list[str]:
        sql = f"SELECT seq, body, {INDEX_SQL} FROM trace" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
        params = list(args)
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return checked_bodies(self.conn.execute(sql, params))

    def close(self) -> None:
        self.conn.close()
