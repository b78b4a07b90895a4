"""Turning an SQLite file to WAL mode when several processes may open it at the same moment."""

from __future__ import annotations

import sqlite3
import time

#: SQLITE_BUSY and SQLITE_LOCKED (primary codes; extended codes carry them in the low byte)
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def enable_wal(db: sqlite3.Connection, timeout_s: float) -> None:
    """Put the file of ``db`` in WAL mode, waiting up to ``timeout_s`` for other processes.

    Changing the journal mode needs the file alone, and SQLite answers ``database is locked`` at
    once (its busy handler is not consulted) while another process opens or converts the same
    new file; several replicas started together then lose the race. The mode is stored in the
    file, so a file another process has already converted needs no change; otherwise retry with
    a short backoff until ``timeout_s``, then raise the last error (the caller maps it)."""
    deadline = time.monotonic() + timeout_s
    pause = 0.001
    while True:
        try:
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                return
            db.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_BUSY) & 0xFF
            if code not in _BUSY or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
