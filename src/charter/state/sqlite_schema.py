"""SQLite schema and the mapping of SQLite error codes to StoreFault."""

from __future__ import annotations

import sqlite3

from charter.state.types import StoreError, StoreFault

SCHEMA = """
CREATE TABLE IF NOT EXISTS hits(key TEXT NOT NULL, t REAL NOT NULL, n INTEGER NOT NULL,
  amount INTEGER NOT NULL, PRIMARY KEY(key, t, n)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members(key TEXT NOT NULL, member TEXT NOT NULL, t REAL NOT NULL,
  PRIMARY KEY(key, member)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS budgets(key TEXT PRIMARY KEY, total INTEGER NOT NULL,
  rolling_s REAL, expires_at REAL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spends(key TEXT NOT NULL, t REAL NOT NULL, n INTEGER NOT NULL,
  amount INTEGER NOT NULL, PRIMARY KEY(key, t, n)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holds(id TEXT PRIMARY KEY, state TEXT NOT NULL, expires_at REAL NOT NULL,
  lines TEXT NOT NULL, result TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hold_lines(key TEXT NOT NULL, hold_id TEXT NOT NULL,
  amount INTEGER NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY(key, hold_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs(key TEXT PRIMARY KEY, steps INTEGER NOT NULL, labels TEXT NOT NULL,
  marks TEXT NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events(run_key TEXT NOT NULL, step INTEGER NOT NULL, doc TEXT NOT NULL,
  PRIMARY KEY(run_key, step)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stops(scope TEXT NOT NULL, value TEXT NOT NULL, rec TEXT NOT NULL,
  PRIMARY KEY(scope, value)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idem(key TEXT PRIMARY KEY, payload TEXT NOT NULL,
  expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records(kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
  doc TEXT NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY(kind, id)) WITHOUT ROWID;
"""

_CODES = {
    5: StoreFault.BUSY,
    6: StoreFault.BUSY,
    7: StoreFault.OOM,
    8: StoreFault.READONLY,
    10: StoreFault.UNAVAILABLE,
    11: StoreFault.CORRUPT,
    13: StoreFault.FULL,
    14: StoreFault.UNAVAILABLE,
    26: StoreFault.CORRUPT,
}


def map_sqlite_error(exc: sqlite3.Error) -> StoreError:
    code = getattr(exc, "sqlite_errorcode", None)
    kind = _CODES.get(code & 0xFF, StoreFault.OTHER) if isinstance(code, int) else StoreFault.OTHER
    if kind is StoreFault.OTHER:
        msg = str(exc).lower()
        for needle, k in (
            ("locked", StoreFault.BUSY),
            ("readonly", StoreFault.READONLY),
            ("read-only", StoreFault.READONLY),
            ("full", StoreFault.FULL),
            ("not a database", StoreFault.CORRUPT),
            ("malformed", StoreFault.CORRUPT),
            ("unable to open", StoreFault.UNAVAILABLE),
        ):
            if needle in msg:
                kind = k
                break
    return StoreError(kind, "sqlite", f"{type(exc).__name__}: {exc}")
