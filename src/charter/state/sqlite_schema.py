"""SQLite schema, the hot-path statements and the mapping of SQLite error codes to StoreFault."""

from __future__ import annotations

import sqlite3

from charter.state.types import StoreError, StoreFault

SCHEMA = """
CREATE TABLE IF NOT EXISTS hits(key TEXT NOT NULL, t REAL NOT NULL, n INTEGER NOT NULL,
  amount INTEGER NOT NULL, PRIMARY KEY(key, t, n)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wsums(key TEXT PRIMARY KEY, s INTEGER NOT NULL, b REAL NOT NULL,
  e REAL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members(key TEXT NOT NULL, member TEXT NOT NULL, t REAL NOT NULL,
  e REAL, PRIMARY KEY(key, member)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS budgets(key TEXT PRIMARY KEY, total INTEGER NOT NULL,
  rolling_s REAL, expires_at REAL, rs INTEGER, rb REAL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spends(key TEXT NOT NULL, t REAL NOT NULL, n INTEGER NOT NULL,
  amount INTEGER NOT NULL, PRIMARY KEY(key, t, n)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holds(id TEXT PRIMARY KEY, state TEXT NOT NULL, expires_at REAL NOT NULL,
  lines TEXT NOT NULL, result TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hold_lines(key TEXT NOT NULL, hold_id TEXT NOT NULL,
  amount INTEGER NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY(key, expires_at, hold_id))
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs(key TEXT PRIMARY KEY, steps INTEGER NOT NULL, labels TEXT NOT NULL,
  marks TEXT NOT NULL, expires_at REAL NOT NULL, dl REAL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events(run_key TEXT NOT NULL, step INTEGER NOT NULL, doc TEXT NOT NULL,
  PRIMARY KEY(run_key, step)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS results(run_key TEXT NOT NULL, decision TEXT NOT NULL, doc TEXT NOT NULL,
  PRIMARY KEY(run_key, decision)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stops(scope TEXT NOT NULL, value TEXT NOT NULL, rec TEXT NOT NULL,
  PRIMARY KEY(scope, value)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idem(key TEXT PRIMARY KEY, payload TEXT NOT NULL,
  expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records(kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
  doc TEXT NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY(kind, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run_grants(run_key TEXT PRIMARY KEY, doc TEXT NOT NULL,
  expires_at REAL NOT NULL) WITHOUT ROWID;
"""

#: A batch's usual writes, one statement each (each statement costs a round trip through the
#: sqlite3 module): per-connection (TEMP) views whose INSTEAD OF triggers write the tables.
#: Nothing in the file changes (no migration; a process of another version is unaffected).
#: ``hit_write``: a counter hit and its running sum (with ``e``: sqlite_batch._counted);
#: ``hold_write``: a one-line hold, its line and its budget's running sum of live holds (the
#: budget row exists as the line describes it).
#: A batch with more to write (a new op) appends its own statements after these.
FUSED = """
CREATE TEMP VIEW IF NOT EXISTS hit_write(key, t, n, amount, s, b, e) AS
  SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL;
CREATE TEMP TRIGGER IF NOT EXISTS hit_write_rows INSTEAD OF INSERT ON hit_write BEGIN
  INSERT INTO hits VALUES(NEW.key, NEW.t, NEW.n, NEW.amount);
  INSERT OR REPLACE INTO wsums(key, s, b, e) VALUES(NEW.key, NEW.s, NEW.b, NEW.e);
END;
CREATE TEMP VIEW IF NOT EXISTS hold_write(id, expires_at, lines, result, key, amount, rs, rb) AS
  SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL;
CREATE TEMP TRIGGER IF NOT EXISTS hold_write_rows INSTEAD OF INSERT ON hold_write BEGIN
  INSERT INTO holds VALUES(NEW.id, 'held', NEW.expires_at, NEW.lines, NEW.result);
  INSERT INTO hold_lines VALUES(NEW.key, NEW.id, NEW.amount, NEW.expires_at);
  UPDATE budgets SET rs=NEW.rs, rb=NEW.rb WHERE key=NEW.key;
END;
"""
HIT_WRITE = "INSERT INTO hit_write VALUES(?,?,?,?,?,?,?)"
#: a running sum moved by a limited hit (no hit written)
WSUM_WRITE = "INSERT OR REPLACE INTO wsums(key, s, b, e) VALUES(?,?,?,?)"
HOLD_WRITE = "INSERT INTO hold_write VALUES(?,?,?,?,?,?,?,?)"

# A budget's running sum of live holds (rs, rb): rs = sum of its hold lines expiring after rb;
# the boundary rb only moves forward, to the time of the reservation that moves it. Read as the
# row and the holds the boundary passes when it moves to now ((rb, now]); a caller whose clock
# lags the boundary reads the lines expiring in (now, rb] itself (BELOW_SQL).
LINE_COLS = (
    "b.total, b.rolling_s, b.expires_at, b.key IS NOT NULL, b.rs, b.rb, "
    "(SELECT coalesce(sum(amount),0) FROM hold_lines WHERE key=b.key AND expires_at>b.rb "
    "AND expires_at<=?2)"
)
BELOW_SQL = "SELECT coalesce(sum(amount),0) FROM hold_lines WHERE key=? AND expires_at>? AND expires_at<=?"
#: The budget row of a key and what its live holds need, in one statement.
LINE_SQL = f"SELECT {LINE_COLS} FROM (SELECT 1) LEFT JOIN budgets b ON b.key=?1"
#: All of a key's live holds, summed (a budget without a running sum yet).
LIVE_SQL = "SELECT coalesce(sum(amount),0) FROM hold_lines WHERE key=? AND expires_at>?"


def migrate(db: sqlite3.Connection) -> None:
    """Bring a file made by an earlier version up to this schema, in one transaction: budgets
    gain their running sum of live holds (rs, rb), and hold lines are keyed by expiry so the
    holds a boundary passes are one range. (Every process sharing a file must run the same
    version: an earlier one would not keep the running sums.)"""

    def current() -> bool:
        cols = {r[1]: r[5] for r in db.execute("PRAGMA table_info(hold_lines)")}
        have = {r[1] for r in db.execute("PRAGMA table_info(budgets)")}
        return cols.get("expires_at") == 2 and "rs" in have

    # a run's deadline on the store's clock (sqlite_batch.load_run); NULL: written by an
    # earlier version, which no reader treats as expired
    _add_column(db, "runs", "dl")
    # when a window's rows are out of it and its margin (SQLiteStore._gc drops them there): per
    # key in its running sum, per row for members; NULL: written by an earlier version (a key's
    # next hit records it; until then its rows are kept as before)
    _add_column(db, "wsums", "e")
    _add_column(db, "members", "e")
    if current():
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if not current():  # another process may have migrated while this one waited
            have = {r[1] for r in db.execute("PRAGMA table_info(budgets)")}
            if "rs" not in have:
                db.execute("ALTER TABLE budgets ADD COLUMN rs INTEGER")
                db.execute("ALTER TABLE budgets ADD COLUMN rb REAL")
            db.execute("ALTER TABLE hold_lines RENAME TO hold_lines_v1")
            db.execute(
                "CREATE TABLE hold_lines(key TEXT NOT NULL, hold_id TEXT NOT NULL, "
                "amount INTEGER NOT NULL, expires_at REAL NOT NULL, "
                "PRIMARY KEY(key, expires_at, hold_id)) WITHOUT ROWID"
            )
            db.execute("INSERT INTO hold_lines SELECT key, hold_id, amount, expires_at FROM hold_lines_v1")
            db.execute("DROP TABLE hold_lines_v1")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _add_column(db: sqlite3.Connection, table: str, col: str) -> None:
    """``ALTER TABLE table ADD COLUMN col REAL`` unless the table has it (nullable: old rows
    read NULL); another process adding it first is no error."""
    if col in {r[1] for r in db.execute(f"PRAGMA table_info({table})")}:
        return
    try:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {col} REAL")
    except sqlite3.OperationalError:
        if col not in {r[1] for r in db.execute(f"PRAGMA table_info({table})")}:
            raise  # (not another process adding it first)


RECORD_SQL = (
    "INSERT INTO records VALUES(?,?,1,?,?) ON CONFLICT(kind, id) DO UPDATE SET "
    "version=CASE WHEN records.expires_at>? THEN records.version+1 ELSE 1 END, "
    "doc=excluded.doc, expires_at=excluded.expires_at"
)


def stops_sql(n: int) -> str:
    """One statement for the first of n stop keys that has a stop (in the order of the keys):
    coalesce of primary-key lookups, which stops at the first hit."""
    one = "(SELECT rec FROM stops WHERE scope=? AND value=?)"
    return f"SELECT coalesce({','.join([one] * n)}, NULL)"


#: within SQLite's limits on function arguments (127) and bound parameters (999)
STOPS_PER_STATEMENT = 32
STOPS_SQL = [stops_sql(n) for n in range(STOPS_PER_STATEMENT + 1)]

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
