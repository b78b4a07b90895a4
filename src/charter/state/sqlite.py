"""SQLite state store: WAL file, one BEGIN IMMEDIATE transaction per atomic operation."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from charter.rand import chance, nonce
from charter.sqlite_wal import enable_wal
from charter.state import sqlite_batch
from charter.state.base import query_params
from charter.state.grant_ops import apply_with_grants, decode_grants, encode_grants, narrow_all
from charter.state.sqlite_batch import PRUNE_P, line_state, load_run, put_record
from charter.state.sqlite_schema import FUSED, SCHEMA, map_sqlite_error, migrate
from charter.state.types import (
    BUDGET_GRACE_S,
    EMPTY_RUN,
    HISTORY_CAP,
    HOLD_RETAIN_S,
    LABEL_MARK,
    PID,
    RESULTS_CHECK_EVERY,
    Batch,
    BatchResult,
    CommitResult,
    GrantRecord,
    LineStatus,
    RecordOp,
    RunState,
    StopRecord,
    check_stop,
    dumps,
    results_bound,
    stop_from_dict,
    stop_to_dict,
)

__all__ = ["PRUNE_P", "SQLiteStore"]

#: a running sum whose boundary is older than this is collected (its next hit rebuilds it)
WSUM_IDLE_S = 86400.0

T = TypeVar("T")
#: a row iff the run is past its deadline on the store's clock (reads see nothing of it)
_DEAD = "SELECT 1 FROM runs WHERE key=?1 AND dl<=?2"
_dumps = dumps


class SQLiteStore:
    """One connection guarded by a lock; processes coordinate through SQLite's file locks."""

    backend = "sqlite"

    def __init__(
        self,
        path: str,
        *,
        busy_timeout_ms: int = 5000,
        readonly: bool = False,
        history_cap: int = HISTORY_CAP,
    ) -> None:
        if history_cap < 1:
            raise ValueError("history_cap must be at least 1")
        #: events kept per run (docs/state.md): older ones are deleted every HISTORY_PRUNE_EVERY steps
        self.history_cap = history_cap
        self.path = path
        self._busy_ms = int(busy_timeout_ms)
        self._readonly = readonly
        self._lock = threading.RLock()
        self._ops = 0
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        self._pid = PID[0]
        try:
            if self.path == ":memory:":
                db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            else:
                uri = f"file:{self.path}?mode=ro" if self._readonly else f"file:{self.path}"
                db = sqlite3.connect(
                    uri,
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=self._busy_ms / 1000,
                )
            db.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            if not self._readonly:
                enable_wal(db, self._busy_ms / 1000)
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(SCHEMA)
                migrate(db)
            else:
                db.execute("SELECT count(*) FROM sqlite_master").fetchall()
            # (TEMP: also on a read-only file, whose writes then fail as READONLY like any other)
            db.executescript(FUSED)
            return db
        except sqlite3.Error as exc:
            raise map_sqlite_error(exc) from None

    def _conn(self) -> sqlite3.Connection:
        """The connection; a forked child gets its own (never share one across fork)."""
        if self._pid != PID[0]:
            self._db = self._open()
        return self._db

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        parts = urlsplit(url)
        path = unquote(parts.path)
        if path in ("/:memory:", ":memory:"):
            path = ":memory:"
        elif path.startswith("//"):
            path = "/" + path.lstrip("/")
        if path != ":memory:" and (not path.startswith("/") or parts.netloc):
            raise ValueError(f"sqlite URL needs an absolute path: sqlite:///abs/path.db, got {url!r}")
        q = query_params(url)
        return cls(
            path,
            busy_timeout_ms=int(q.get("busy_timeout_ms", "5000")),
            readonly=q.get("mode") == "ro",
        )

    # ------------------------------------------------------------------ plumbing
    def _tx(self) -> _Tx:
        """``with self._tx() as db:`` runs the block in one BEGIN IMMEDIATE transaction."""
        return _Tx(self)

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                return fn(self._conn())
            except sqlite3.Error as exc:
                raise map_sqlite_error(exc) from None

    # ------------------------------------------------------------------ hot path
    def apply(self, batch: Batch) -> BatchResult:
        with self._tx() as db:
            if batch.grant_use is None:
                res = sqlite_batch.apply(db, batch, self.history_cap)
            else:  # the grant-use op, in the same transaction (charter.state.grant_ops)
                res = apply_with_grants(
                    batch,
                    lambda key: _live_grants(db, key),
                    lambda b: sqlite_batch.apply(db, b, self.history_cap),
                    lambda key, grants: _write_grants(db, key, grants, None),
                )
            self._ops += 1
            if self._ops % 2000 == 0:
                self._gc(db, batch.now)
            return res

    @staticmethod
    def _used_reserved(db: sqlite3.Connection, key: str, now: float) -> tuple[int, int]:
        used, reserved, _, _ = line_state(db, key, now, None, False)
        return used, reserved

    def _gc(self, db: sqlite3.Connection, now: float) -> None:
        db.execute("DELETE FROM holds WHERE expires_at<=?", (now - HOLD_RETAIN_S,))
        # expired hold lines, except those a budget's running sum still counts (above its rb)
        db.execute(
            "DELETE FROM hold_lines WHERE expires_at<=? AND NOT EXISTS (SELECT 1 FROM budgets x "
            "WHERE x.key=hold_lines.key AND x.rb IS NOT NULL AND hold_lines.expires_at>x.rb)",
            (now,),
        )
        # budgets that read as absent (docs/state.md "What each store keeps"): a calendar period
        # past its grace, a rolling budget whose spends are all past the pruning (twice its
        # window), neither with a hold line left (a missing row reads its live holds from them)
        db.execute(
            "DELETE FROM budgets WHERE NOT EXISTS (SELECT 1 FROM hold_lines h WHERE h.key=budgets.key) "
            "AND (expires_at+?2<=?1 OR (expires_at IS NULL AND rolling_s IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM spends x WHERE x.key=budgets.key AND x.t>?1-2*budgets.rolling_s)))",
            (now, BUDGET_GRACE_S),
        )
        # (spends of a key without a row are never read: line_state)
        db.execute("DELETE FROM spends WHERE NOT EXISTS (SELECT 1 FROM budgets b WHERE b.key=spends.key)")
        db.execute("DELETE FROM idem WHERE expires_at<=?", (now,))
        # rate windows whose newest hit is out of its window and its margin (``e``: docs/state.md
        # "What each store keeps"): every hit of the key with its running sum (which reads as
        # no hit, as no row does), and members one by one (each counted only while it is inside)
        db.execute("DELETE FROM hits WHERE key IN (SELECT key FROM wsums WHERE e<=?)", (now,))
        db.execute("DELETE FROM wsums WHERE e<=?", (now,))
        db.execute("DELETE FROM members WHERE e<=?", (now,))
        # a running sum without ``e`` (written by an earlier version) is only a cache of its
        # hits: one collected is rebuilt by its next hit
        db.execute("DELETE FROM wsums WHERE e IS NULL AND b<=?", (now - WSUM_IDLE_S,))
        db.execute("DELETE FROM records WHERE expires_at<=?", (time.time(),))
        # runs expired on either clock (sqlite_batch.load_run)
        dead = (now, time.time())
        db.execute(
            "DELETE FROM events WHERE run_key IN (SELECT key FROM runs WHERE expires_at<=? OR dl<=?)", dead
        )
        db.execute(
            "DELETE FROM results WHERE run_key IN (SELECT key FROM runs WHERE expires_at<=? OR dl<=?)", dead
        )
        db.execute("DELETE FROM runs WHERE expires_at<=? OR dl<=?", dead)
        db.execute("DELETE FROM run_grants WHERE expires_at<=?", (now,))

    # ------------------------------------------------------------------ holds
    def commit(self, hold_id: str, actual: int | None, *, now: float) -> CommitResult:
        with self._tx() as db:
            row = db.execute("SELECT state, expires_at, lines FROM holds WHERE id=?", (hold_id,)).fetchone()
            if row is None:
                return CommitResult(False, False, found=False)
            state, exp, lines_json = row
            lines = json.loads(lines_json)
            if state == "committed":
                return CommitResult(True, True, self._statuses(db, lines, None, now))
            if state != "held" or exp <= now:
                return CommitResult(False, False)
            for key, _limit, amount, rolling_s, line_exp in lines:
                spend = amount if actual is None else actual
                _drop_line(db, key, exp, hold_id)
                db.execute(
                    "INSERT INTO budgets(key, total, rolling_s, expires_at) VALUES(?,?,?,?) "
                    "ON CONFLICT(key) DO UPDATE SET total=total+excluded.total",
                    (key, spend, rolling_s, line_exp),
                )
                if rolling_s is not None and spend:
                    db.execute(
                        "INSERT INTO spends VALUES(?,?,?,?)",
                        (key, now, nonce(), spend),
                    )
            db.execute("UPDATE holds SET state='committed' WHERE id=?", (hold_id,))
            return CommitResult(True, False, self._statuses(db, lines, actual, now))

    def _statuses(
        self, db: sqlite3.Connection, lines: list[list[Any]], actual: int | None, now: float
    ) -> tuple[LineStatus, ...]:
        out = []
        for key, limit, amount, _r, _e in lines:
            used, reserved = self._used_reserved(db, key, now)
            amt = amount if actual is None else actual
            out.append(LineStatus(key, limit, used, reserved, amt, used <= limit))
        return tuple(out)

    def release(self, hold_id: str, *, now: float) -> bool:
        with self._tx() as db:
            row = db.execute("SELECT state, expires_at, lines FROM holds WHERE id=?", (hold_id,)).fetchone()
            if row is None or row[0] != "held" or row[1] <= now:
                return False
            for line in json.loads(row[2]):
                _drop_line(db, line[0], row[1], hold_id)
            db.execute("UPDATE holds SET state='released' WHERE id=?", (hold_id,))
            return True

    def budget_status(self, keys: Sequence[str], *, now: float) -> dict[str, tuple[int, int]]:
        with self._tx() as db:
            return {k: self._used_reserved(db, k, now) for k in keys}

    def ledger_total(self, key: str) -> int:
        row = self._read(lambda db: db.execute("SELECT total FROM budgets WHERE key=?", (key,)).fetchone())
        return 0 if row is None else int(row[0])

    # ------------------------------------------------------------------ runs
    def run_state(self, run_key: str) -> RunState:
        def go(db: sqlite3.Connection) -> RunState:
            if db.execute(_DEAD, (run_key, time.time())).fetchone() is not None:
                return EMPTY_RUN  # (its grants too: they belong to the run)
            steps, labels, marks = load_run(db, run_key, None)
            grants = _grants(db, run_key)
            if not steps and not labels and not grants:
                return EMPTY_RUN
            return RunState(steps, frozenset(labels), {k: (v[0], v[1]) for k, v in marks.items()}, grants)

        return self._read(go)

    # ------------------------------------------------------------------ run grants
    def begin_grants(
        self,
        run_key: str,
        grants: Sequence[GrantRecord],
        labels: frozenset[str] = frozenset(),
        *,
        now: float,
        ttl_s: float,
    ) -> bool:
        """Store a run's grants (and first labels) iff the run has no grants and no step; atomic."""
        with self._tx() as db:
            steps, have, marks = load_run(db, run_key, now)
            if steps or _grants(db, run_key):
                return False
            have.update(labels)
            for lab in labels:  # they arrive before the first step (docs/semantics.md 8.1)
                marks[LABEL_MARK + lab] = [0, now]
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES(?,?,?,?,?,?)",
                (run_key, steps, _dumps(sorted(have)), _dumps(marks), now + ttl_s, time.time() + ttl_s),
            )
            _write_grants(db, run_key, tuple(grants), now + ttl_s)
            return True

    def narrow_grants(
        self, run_key: str, revoke: Sequence[str], uses: Mapping[str, int], *, now: float
    ) -> tuple[GrantRecord, ...]:
        """Revoke grants or lower their uses (never widen); the run's grants after."""
        with self._tx() as db:
            left = narrow_all(_live_grants(db, run_key), revoke, uses)
            _write_grants(db, run_key, left, None)
            return left

    def add_labels(self, run_key: str, labels: frozenset[str], *, now: float, ttl_s: float) -> None:
        with self._tx() as db:
            steps, have, marks = load_run(db, run_key, now)
            have.update(labels)
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES(?,?,?,?,?,?)",
                (run_key, steps, _dumps(sorted(have)), _dumps(marks), now + ttl_s, time.time() + ttl_s),
            )

    def mark_labels(self, run_key: str, labels: frozenset[str], *, now: float, ttl_s: float) -> None:
        with self._tx() as db:
            steps, have, marks = load_run(db, run_key, now)
            have.update(labels)
            for lab in labels:
                marks[LABEL_MARK + lab] = [steps, now]
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES(?,?,?,?,?,?)",
                (run_key, steps, _dumps(sorted(have)), _dumps(marks), now + ttl_s, time.time() + ttl_s),
            )

    def history(self, run_key: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._read(
            lambda db: db.execute(
                f"SELECT doc FROM events WHERE run_key=?1 AND NOT EXISTS({_DEAD}) "
                "ORDER BY step DESC LIMIT ?3",
                (run_key, time.time(), max(min(limit, self.history_cap), 0)),
            ).fetchall()
        )
        return [json.loads(r[0]) for r in reversed(rows)]

    def put_result(
        self, run_key: str, decision: str, doc: Mapping[str, Any], *, now: float, ttl_s: float
    ) -> None:
        with self._tx() as db:
            steps, have, marks = load_run(db, run_key, now)
            db.execute("INSERT OR REPLACE INTO results VALUES(?,?,?)", (run_key, decision, _dumps(dict(doc))))
            if chance() * RESULTS_CHECK_EVERY < 1:
                self._drop_results_without_event(db, run_key, decision)
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES(?,?,?,?,?,?)",
                (run_key, steps, _dumps(sorted(have)), _dumps(marks), now + ttl_s, time.time() + ttl_s),
            )

    def _drop_results_without_event(self, db: sqlite3.Connection, run_key: str, keep: str) -> None:
        """Past results_bound, a run's settlements whose event is not kept go (docs/state.md)."""
        n = db.execute("SELECT count(*) FROM results WHERE run_key=?", (run_key,)).fetchone()[0]
        if n > results_bound(self.history_cap):
            db.execute(
                "DELETE FROM results WHERE run_key=?1 AND decision<>?2 AND decision NOT IN (SELECT "
                "json_extract(doc, '$.decision') AS d FROM events WHERE run_key=?1 AND d IS NOT NULL)",
                (run_key, keep),
            )

    def history_detail(self, run_key: str, limit: int) -> list[dict[str, Any]]:
        rows = self._read(
            lambda db: db.execute(
                "SELECT e.doc, r.doc FROM events e LEFT JOIN results r ON r.run_key=e.run_key "
                "AND r.decision=json_extract(e.doc, '$.decision') WHERE e.run_key=?1 "
                f"AND NOT EXISTS({_DEAD}) ORDER BY e.step DESC LIMIT ?3",
                (run_key, time.time(), max(min(limit, self.history_cap), 0)),
            ).fetchall()
        )
        out = []
        for ev_doc, res_doc in reversed(rows):
            ev = json.loads(ev_doc)
            if res_doc is not None:
                ev["settlement"] = json.loads(res_doc)
            out.append(ev)
        return out

    # ------------------------------------------------------------------ stops
    def set_stop(self, rec: StopRecord) -> None:
        check_stop(rec)
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO stops VALUES(?,?,?)",
                (rec.scope, rec.value, _dumps(stop_to_dict(rec))),
            )

    def clear_stop(self, scope: str, value: str) -> StopRecord | None:
        with self._tx() as db:
            row = db.execute(
                "DELETE FROM stops WHERE scope=? AND value=? RETURNING rec", (scope, value)
            ).fetchone()
            return None if row is None else stop_from_dict(json.loads(row[0]))

    def list_stops(self) -> list[StopRecord]:
        rows = self._read(lambda db: db.execute("SELECT rec FROM stops").fetchall())
        recs = [stop_from_dict(json.loads(r[0])) for r in rows]
        return sorted(recs, key=lambda s: (s.at, s.scope, s.value))

    # ------------------------------------------------------------------ idempotency
    def remember(self, key: str, payload: str, *, now: float, ttl_s: float) -> str | None:
        with self._tx() as db:
            row = db.execute("SELECT payload FROM idem WHERE key=? AND expires_at>?", (key, now)).fetchone()
            if row is not None:
                return str(row[0])
            db.execute("INSERT OR REPLACE INTO idem VALUES(?,?,?)", (key, payload, now + ttl_s))
            return None

    # ------------------------------------------------------------------ records
    def put_record(self, kind: str, id: str, doc: Mapping[str, Any], *, ttl_s: float | None) -> None:
        op = RecordOp(kind, id, doc, ttl_s)
        with self._tx() as db:
            put_record(db, op)

    def get_record(self, kind: str, id: str) -> tuple[int, dict[str, Any]] | None:
        row = self._read(
            lambda db: db.execute(
                "SELECT version, doc FROM records WHERE kind=? AND id=? AND expires_at>?",
                (kind, id, time.time()),
            ).fetchone()
        )
        return None if row is None else (int(row[0]), json.loads(row[1]))

    def cas_record(self, kind: str, id: str, version: int, doc: Mapping[str, Any]) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE records SET version=version+1, doc=? "
                "WHERE kind=? AND id=? AND version=? AND expires_at>?",
                (_dumps(dict(doc)), kind, id, version, time.time()),
            )
            return cur.rowcount == 1

    def list_records(self, kind: str) -> list[dict[str, Any]]:
        rows = self._read(
            lambda db: db.execute(
                "SELECT doc FROM records WHERE kind=? AND expires_at>? ORDER BY id",
                (kind, time.time()),
            ).fetchall()
        )
        return [json.loads(r[0]) for r in rows]

    def entry_counts(self) -> dict[str, int]:
        """Rows kept, per kind (tests/state/test_bounded.py; never on the decide path): what
        docs/state.md bounds. Expired ones are counted until a sweep deletes them."""

        def go(db: sqlite3.Connection) -> dict[str, int]:
            one = "SELECT count(*) FROM "
            return {
                kind: int(db.execute(one + table).fetchone()[0])
                for kind, table in (
                    (
                        "windows",
                        "(SELECT key FROM hits UNION SELECT key FROM members UNION SELECT key FROM wsums)",
                    ),
                    ("budgets", "budgets"),
                    ("spends", "spends"),
                    ("holds", "holds"),
                    ("runs", "runs"),
                    ("idempotency", "idem"),
                    ("records", "records"),
                    ("stops", "stops"),
                )
            }

        return self._read(go)

    def ping(self) -> None:
        """Read the schema and the first row of every table: ``SELECT 1`` succeeds on a file whose
        pages are garbage, and readiness must say not ready when every decision would deny."""

        def probe(db: sqlite3.Connection) -> None:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            if not tables:
                raise sqlite3.DatabaseError("the state database has no tables")
            for name in tables:
                db.execute(f'SELECT * FROM "{name}" LIMIT 1').fetchall()

        self._read(probe)
        if self.path == ":memory:":
            return
        # The open connection may answer from its page cache while the file under it is garbage:
        # read the file as a new reader would, through a fresh read-only connection.
        try:
            fresh = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=self._busy_ms / 1000)
            try:
                probe(fresh)
            finally:
                fresh.close()
        except sqlite3.Error as exc:
            raise map_sqlite_error(exc) from None

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error as exc:
                raise map_sqlite_error(exc) from None


def _live_grants(db: sqlite3.Connection, run_key: str) -> tuple[GrantRecord, ...]:
    """A run's grants; none once the run is past its deadline (they go with it, as in memory)."""
    if db.execute(_DEAD, (run_key, time.time())).fetchone() is not None:
        return ()
    return _grants(db, run_key)


def _grants(db: sqlite3.Connection, run_key: str) -> tuple[GrantRecord, ...]:
    row = db.execute("SELECT doc FROM run_grants WHERE run_key=?", (run_key,)).fetchone()
    return decode_grants(row[0]) if row is not None else ()


def _write_grants(
    db: sqlite3.Connection, run_key: str, grants: tuple[GrantRecord, ...], expires_at: float | None
) -> None:
    if expires_at is None:
        db.execute("UPDATE run_grants SET doc=? WHERE run_key=?", (encode_grants(grants), run_key))
    else:
        db.execute(
            "INSERT OR REPLACE INTO run_grants VALUES(?,?,?)", (run_key, encode_grants(grants), expires_at)
        )


def _drop_line(db: sqlite3.Connection, key: str, exp: float, hold_id: str) -> None:
    """Remove a settled or released hold's line, and its amount from the budget's running sum
    of live holds when that counts it (it expires after the boundary)."""
    got = db.execute(
        "DELETE FROM hold_lines WHERE key=? AND expires_at=? AND hold_id=? RETURNING amount",
        (key, exp, hold_id),
    ).fetchone()
    if got is not None:
        db.execute("UPDATE budgets SET rs=rs-? WHERE key=? AND rb IS NOT NULL AND ?>rb", (got[0], key, exp))


class _Tx:
    """One write transaction under the store's lock: COMMIT when the block ends, ROLLBACK when
    it raises; an SQLite error becomes a StoreError. (A class, not a generator-based context
    manager: it is on every decision's path, and this costs a third as much.)"""

    __slots__ = ("db", "store")

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        store = self.store
        store._lock.acquire()
        try:
            self.db = db = store._conn()
            db.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            store._lock.release()
            if isinstance(exc, sqlite3.Error):
                raise map_sqlite_error(exc) from None
            raise
        return db

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        db = self.db
        try:
            if kind is None:
                try:
                    db.execute("COMMIT")
                    return
                except sqlite3.Error as err:
                    exc = err
            if db.in_transaction:  # SQLite may already have rolled back (FULL, IOERR)
                with suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise map_sqlite_error(exc) from None
        finally:
            self.store._lock.release()
