"""PostgreSQL state store: each operation is one statement (a PL/pgSQL call) = one transaction."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from charter.extras import missing_extra
from charter.rand import chance

try:
    import psycopg
    from psycopg.types.json import Jsonb
except ImportError as _exc:  # an optional dependency: name the extra to install
    raise missing_extra("postgres", "the PostgreSQL state store", _exc) from _exc

from charter.state import postgres_sql as ddl
from charter.state.grant_ops import apply_with_grants, decode_grants, encode_grants, narrow_all
from charter.state.types import (
    EMPTY_RUN,
    HISTORY_CAP,
    RESULTS_CHECK_EVERY,
    Batch,
    BatchResult,
    CommitResult,
    GrantRecord,
    HitResult,
    LineStatus,
    ReserveResult,
    RunState,
    StopRecord,
    StoreError,
    StoreFault,
    check_stop,
    lines_from_json,
    prune_margin,
    results_bound,
    stop_from_dict,
    stop_to_dict,
)

T = TypeVar("T")
INF = 1e308
#: the server's clock, on which a run's deadline ``dl`` is kept (ttl after its last write, like a
#: Redis key's TTL); the writers' ``now`` may be any clock
_CLK = "extract(epoch FROM clock_timestamp())"
#: the run row ``r`` is expired: on the writers' clock or past its deadline
_DEAD_R = f"(r.expires_at <= %(now)s OR r.dl <= {_CLK})"
_DEAD_ROW = f"(expires_at <= %(now)s OR dl <= {_CLK})"
_DL = f"{_CLK} + %(ttl)s"
#: a row iff the run (key: the first parameter) is past its deadline (reads see nothing of it)
_DEAD = "SELECT 1 FROM {s}.runs WHERE key = %s AND dl <= " + _CLK
#: Attempts for a transaction that failed with a serialization failure or a deadlock.
RETRIES = 3
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

_STATES: list[tuple[str, StoreFault]] = [
    ("40001", StoreFault.CONFLICT),
    ("40P01", StoreFault.CONFLICT),
    ("57014", StoreFault.TIMEOUT),
    ("55P03", StoreFault.BUSY),
    ("25006", StoreFault.READONLY),
    ("53100", StoreFault.FULL),
    ("53200", StoreFault.OOM),
    ("XX001", StoreFault.CORRUPT),
    ("XX002", StoreFault.CORRUPT),
    ("P0001", StoreFault.SCRIPT),
    ("08", StoreFault.UNAVAILABLE),
    ("57P", StoreFault.UNAVAILABLE),
    ("53300", StoreFault.UNAVAILABLE),
    ("42", StoreFault.PROTOCOL),
]


def map_pg_error(exc: Exception) -> StoreError:
    state = getattr(exc, "sqlstate", None) or ""
    kind = StoreFault.OTHER
    for prefix, k in _STATES:
        if state.startswith(prefix):
            kind = k
            break
    else:
        if isinstance(exc, psycopg.errors.ConnectionTimeout):
            kind = StoreFault.TIMEOUT
        elif isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            kind = StoreFault.UNAVAILABLE
        elif isinstance(exc, psycopg.DataError):
            kind = StoreFault.PROTOCOL
    return StoreError(kind, "postgresql", f"{type(exc).__name__} [{state}]: {exc}")


def _lock_id(schema: str, kind: str, key: str) -> int:
    """The advisory lock id of a key: the first 8 bytes of SHA-256, signed (``key_lock`` in SQL
    computes the same, so the sweep locks what a batch locks)."""
    d = hashlib.sha256(f"{schema}|{kind}|{key}".encode()).digest()
    return int.from_bytes(d[:8], "big", signed=True)


class PostgresStore:
    """One autocommit connection (reconnected after a drop); serialization is by advisory locks."""

    backend = "postgresql"

    def __init__(
        self,
        dsn: str,
        schema: str = "charter",
        *,
        connect_timeout: float = 5.0,
        statement_timeout_ms: int = 10_000,
        history_cap: int = HISTORY_CAP,
    ) -> None:
        if not _IDENT.match(schema):
            raise ValueError(f"invalid PostgreSQL schema name {schema!r}")
        if history_cap < 1:
            raise ValueError("history_cap must be at least 1")
        #: events kept per run (docs/state.md): older ones are deleted every HISTORY_PRUNE_EVERY steps
        self.history_cap = history_cap
        self.dsn = dsn
        self.schema = schema
        self._s = f'"{schema}"'
        self._timeout = connect_timeout
        self._stmt_ms = statement_timeout_ms
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        self._pid = os.getpid()
        self._call(self._setup)

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        parts = urlsplit(url)
        q = dict(parse_qsl(parts.query))
        schema = q.pop("schema", "charter")
        timeout = float(q.pop("connect_timeout", "5"))
        stmt_ms = int(q.pop("statement_timeout_ms", "10000"))
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(q, quote_via=quote), ""))
        return cls(dsn, schema, connect_timeout=timeout, statement_timeout_ms=stmt_ms)

    # ------------------------------------------------------------------ plumbing
    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and self._pid != os.getpid():
            self._conn = None  # forked: the parent's socket is not ours to use or close
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._pid = os.getpid()
            self._conn = psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=max(1, int(self._timeout))
            )
            # A stuck lock holder or server turns into TIMEOUT instead of hanging the engine.
            self._conn.execute(f"SET statement_timeout = {int(self._stmt_ms)}")
        return self._conn

    def _setup(self) -> None:
        conn = self._connection()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_id(self.schema, "ddl", ""),))
            # INVARIANT: a schema that is already current gets no table DDL: ALTER TABLE (even
            # ADD COLUMN IF NOT EXISTS) and CREATE INDEX lock tables that running decisions are
            # writing, and a process starting beside them deadlocked with them.
            current = conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL AND EXISTS"
                " (SELECT 1 FROM pg_attribute"
                " WHERE attrelid = to_regclass(%s) AND attname = 'rb' AND NOT attisdropped) AND EXISTS"
                " (SELECT 1 FROM pg_attribute"
                " WHERE attrelid = to_regclass(%s) AND attname = 'dl' AND NOT attisdropped) AND EXISTS"
                " (SELECT 1 FROM pg_attribute"
                " WHERE attrelid = to_regclass(%s) AND attname = 'e' AND NOT attisdropped) AND EXISTS"
                " (SELECT 1 FROM pg_attribute"
                " WHERE attrelid = to_regclass(%s) AND attname = 'e' AND NOT attisdropped)",
                (
                    f"{self._s}.records",
                    f"{self._s}.results",
                    f"{self._s}.budgets",
                    f"{self._s}.runs",
                    f"{self._s}.wsums",
                    f"{self._s}.members",
                ),
            ).fetchone()
            if not (current and current[0]):
                conn.execute(ddl.TABLES.format(s=self._s))
            # a new table only: creating it (or finding it) locks none that decisions write
            conn.execute(ddl.GRANT_TABLES.format(s=self._s))
            conn.execute(ddl.FUNCTIONS.format(s=self._s, lit="'" + self.schema.replace("'", "''") + "'"))

    def _call(self, fn: Callable[[], T]) -> T:
        """Run fn under the lock; retry whole transactions that lost a serialization race."""
        with self._lock:
            for attempt in range(RETRIES):
                try:
                    return fn()
                except psycopg.Error as exc:
                    err = map_pg_error(exc)
                    if err.kind is StoreFault.CONFLICT and attempt + 1 < RETRIES:
                        time.sleep(0.001 * (attempt + 1))
                        continue
                    raise err from None
            raise AssertionError("unreachable")

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._call(lambda: self._connection().execute(sql, params).fetchone())
        return None if row is None else row[0]

    # ------------------------------------------------------------------ hot path
    def apply(self, batch: Batch) -> BatchResult:
        if batch.grant_use is not None:
            return self._apply_grants(batch)
        out = self._one(f"SELECT {self._s}.apply(%s)", (Jsonb(self._body(batch)),))
        try:
            return self._parse(batch, out)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise StoreError(StoreFault.PROTOCOL, "postgresql", repr(exc)) from None

    def _apply_grants(self, batch: Batch) -> BatchResult:
        """The batch and its grant-use op in one transaction (the run's grants row locked)."""
        s = self._s

        def tx() -> BatchResult:
            conn = self._connection()
            with conn.transaction():

                def read(key: str) -> tuple[GrantRecord, ...]:
                    # (none once the run is past its deadline: they go with it, as in memory)
                    row = conn.execute(
                        f"SELECT doc FROM {s}.run_grants WHERE run_key = %s "
                        f"AND NOT EXISTS ({_DEAD.format(s=s)}) FOR UPDATE",
                        (key, key),
                    ).fetchone()
                    return decode_grants(row[0]) if row is not None else ()

                def run(b: Batch) -> BatchResult:
                    got = conn.execute(f"SELECT {s}.apply(%s)", (Jsonb(self._body(b)),)).fetchone()
                    try:
                        return self._parse(b, got[0] if got is not None else {})
                    except (ValueError, TypeError, KeyError, IndexError) as exc:
                        raise StoreError(StoreFault.PROTOCOL, "postgresql", repr(exc)) from None

                def write(key: str, grants: tuple[GrantRecord, ...]) -> None:
                    conn.execute(
                        f"UPDATE {s}.run_grants SET doc = %s WHERE run_key = %s", (encode_grants(grants), key)
                    )

                return apply_with_grants(batch, read, run, write)

        return self._call(tx)

    def _body(self, batch: Batch) -> dict[str, Any]:
        """The JSON argument of the apply function."""
        sch = self.schema
        locks: set[int] = set()
        hits = []
        for h in batch.hits:
            locks.add(_lock_id(sch, "w", h.key))
            hits.append(
                {
                    "key": h.key,
                    "lo": batch.now - h.window_s,
                    "w": prune_margin(h.window_s),  # entries kept this long past the window
                    "win": h.window_s,
                    "amount": h.amount,
                    "limit": h.limit,
                    "trip": h.trip_above,
                    "member": h.member,
                }
            )
        body: dict[str, Any] = {
            "now": batch.now,
            "idem": batch.idempotency_key,
            "stops": [list(k) for k in batch.stop_keys],
            "hits": hits,
        }
        rv = batch.reserve
        if rv is not None:
            body["reserve"] = {
                "id": rv.hold_id,
                "exp": batch.now + rv.ttl_s,
                "lines": [
                    {
                        "key": x.key,
                        "limit": x.limit,
                        "amount": x.amount,
                        "roll": x.rolling_s,
                        "exp": x.expires_at,
                    }
                    for x in rv.lines
                ],
            }
            locks.update(_lock_id(sch, "b", x.key) for x in rv.lines)
        ev = batch.event
        if ev is not None:
            body["event"] = {
                "run": ev.run_key,
                "doc": ev.event,
                "labels": sorted(ev.labels),
                "marks": sorted(ev.marks),
                "exp": batch.now + ev.ttl_s,
                "cap": self.history_cap,
                "ttl": ev.ttl_s,
            }
            locks.add(_lock_id(sch, "r", ev.run_key))
        rec = batch.record
        if rec is not None:
            t = time.time()
            body["record"] = {
                "kind": rec.kind,
                "id": rec.id,
                "doc": dict(rec.doc),
                "exp": INF if rec.ttl_s is None else t + rec.ttl_s,
                "t": t,
            }
        body["locks"] = sorted(locks)
        return body

    @staticmethod
    def _parse(batch: Batch, out: dict[str, Any]) -> BatchResult:
        if "replayed" in out:
            return BatchResult(replayed_payload=str(out["replayed"]))
        if "stop" in out:
            return BatchResult(stop=stop_from_dict(out["stop"]))
        hits = tuple(
            HitResult(op.key, int(t), bool(lim), bool(tr))
            for op, (t, lim, tr) in zip(batch.hits, out["hits"], strict=True)
        )
        reserve = None
        if out["reserve"] is not None:
            replayed, (ok, lines) = out["reserve"]
            reserve = ReserveResult(bool(ok), lines_from_json(lines), bool(replayed))
        run = None
        if out["run"] is not None:
            steps, labels, marks = out["run"]
            run = RunState(
                int(steps),
                frozenset(labels),
                {k: (int(v[0]), float(v[1])) for k, v in marks.items()},
            )
        step = out["step"]
        return BatchResult(
            hits=hits,
            reserve=reserve,
            step=None if step is None else int(step),
            run=run,
            recorded=bool(out["recorded"]),
        )

    # ------------------------------------------------------------------ holds
    def _hold_locks(self, hold_id: str) -> tuple[list[Any], list[int]] | None:
        lines = self._one(f"SELECT lines FROM {self._s}.holds WHERE id = %s", (hold_id,))
        if lines is None:
            return None
        locks = {_lock_id(self.schema, "h", hold_id)}
        locks.update(_lock_id(self.schema, "b", x["key"]) for x in lines)
        return lines, sorted(locks)

    def commit(self, hold_id: str, actual: int | None, *, now: float) -> CommitResult:
        got = self._hold_locks(hold_id)
        if got is None:
            return CommitResult(False, False, found=False)
        out = self._one(f"SELECT {self._s}.commit(%s, %s, %s, %s)", (hold_id, actual, now, got[1]))
        tag = out[0]
        if tag in ("U", "X"):
            return CommitResult(False, False, found=tag == "X")
        statuses = []
        for (used, reserved), x in zip(out[1], out[2], strict=True):
            amt = x["amount"] if actual is None or tag == "A" else actual
            statuses.append(LineStatus(x["key"], x["limit"], used, reserved, amt, used <= x["limit"]))
        return CommitResult(True, tag == "A", tuple(statuses))

    def release(self, hold_id: str, *, now: float) -> bool:
        got = self._hold_locks(hold_id)
        if got is None:
            return False
        return bool(self._one(f"SELECT {self._s}.release(%s, %s, %s)", (hold_id, now, got[1])))

    def budget_status(self, keys: Sequence[str], *, now: float) -> dict[str, tuple[int, int]]:
        rows = self._call(
            lambda: (
                self._connection()
                .execute(
                    f"SELECT k, (s).used, (s).reserved FROM (SELECT k, "
                    f"{self._s}.line_state(k, %s, NULL, false, false) AS s "
                    "FROM unnest(%s::text[]) k) q",
                    (now, list(keys)),
                )
                .fetchall()
            )
        )
        return {k: (int(u), int(r)) for k, u, r in rows}

    def ledger_total(self, key: str) -> int:
        got = self._one(f"SELECT total FROM {self._s}.budgets WHERE key = %s", (key,))
        return 0 if got is None else int(got)

    # ------------------------------------------------------------------ runs
    def run_state(self, run_key: str) -> RunState:
        # the run's grants come back from the same statement (one round trip)
        row = self._call(
            lambda: (
                self._connection()
                .execute(
                    f"SELECT r.steps, r.labels, r.marks, g.doc FROM (SELECT 1) x "
                    f"LEFT JOIN {self._s}.runs r ON r.key = %s "
                    f"LEFT JOIN {self._s}.run_grants g ON g.run_key = %s "
                    f"WHERE NOT EXISTS ({_DEAD.format(s=self._s)})",  # (its grants go with it)
                    (run_key, run_key, run_key),
                )
                .fetchone()
            )
        )
        if row is None or (row[0] is None and row[3] is None):
            return EMPTY_RUN
        grants = decode_grants(row[3])
        if row[0] is None:
            return RunState(0, frozenset(), {}, grants)
        marks = {k: (int(v[0]), float(v[1])) for k, v in row[2].items()}
        return RunState(int(row[0]), frozenset(row[1]), marks, grants)

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
        s = self._s

        def tx() -> bool:
            conn = self._connection()
            with conn.transaction():
                # the run's lock, as the apply function takes it for the run's event
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_id(self.schema, "r", run_key),))
                row = conn.execute(
                    f"SELECT (SELECT steps FROM {s}.runs WHERE key = %s AND expires_at > %s "
                    f"AND NOT coalesce(dl <= {_CLK}, false)), "
                    f"(SELECT doc FROM {s}.run_grants WHERE run_key = %s AND expires_at > %s "
                    f"AND NOT EXISTS ({_DEAD.format(s=s)}) FOR UPDATE)",
                    (run_key, now, run_key, now, run_key),
                ).fetchone()
                if row is None or (row[0] or 0) > 0 or decode_grants(row[1]):
                    return False
                conn.execute(
                    f"INSERT INTO {s}.run_grants VALUES (%s, %s, %s) ON CONFLICT (run_key) DO UPDATE "
                    "SET doc = excluded.doc, expires_at = excluded.expires_at",
                    (run_key, encode_grants(grants), now + ttl_s),
                )
            return True

        ok = self._call(tx)
        if ok and labels:  # they arrive before the first step, with their marks (semantics.md 8.1)
            self.mark_labels(run_key, labels, now=now, ttl_s=ttl_s)
        elif ok:  # (also without labels: the run's row carries its deadline, which its grants follow)
            self.add_labels(run_key, labels, now=now, ttl_s=ttl_s)
        return ok

    def narrow_grants(
        self, run_key: str, revoke: Sequence[str], uses: Mapping[str, int], *, now: float
    ) -> tuple[GrantRecord, ...]:
        """Revoke grants or lower their uses (never widen); the run's grants after."""
        s = self._s

        def tx() -> tuple[GrantRecord, ...]:
            conn = self._connection()
            with conn.transaction():
                row = conn.execute(
                    f"SELECT doc FROM {s}.run_grants WHERE run_key = %s "
                    f"AND NOT EXISTS ({_DEAD.format(s=s)}) FOR UPDATE",
                    (run_key, run_key),
                ).fetchone()
                left = narrow_all(decode_grants(row[0]) if row else (), revoke, uses)
                conn.execute(
                    f"UPDATE {s}.run_grants SET doc = %s WHERE run_key = %s", (encode_grants(left), run_key)
                )
                return left

        return self._call(tx)

    def add_labels(self, run_key: str, labels: frozenset[str], *, now: float, ttl_s: float) -> None:
        s = self._s
        sql = (
            f"WITH old AS (DELETE FROM {s}.events WHERE run_key = %(k)s AND EXISTS "
            f"(SELECT 1 FROM {s}.runs WHERE key = %(k)s AND {_DEAD_ROW})) "
            f"INSERT INTO {s}.runs AS r VALUES (%(k)s, 0, %(l)s, '{{}}', %(exp)s, {_DL}) "
            "ON CONFLICT (key) DO UPDATE SET "
            f"steps = CASE WHEN {_DEAD_R} THEN 0 ELSE r.steps END, "
            f"marks = CASE WHEN {_DEAD_R} THEN '{{}}'::jsonb ELSE r.marks END, "
            f"labels = ARRAY(SELECT DISTINCT x FROM unnest(CASE WHEN {_DEAD_R} "
            "THEN '{}'::text[] ELSE r.labels END || excluded.labels) x ORDER BY 1), "
            "expires_at = excluded.expires_at, dl = excluded.dl"
        )
        params = {"k": run_key, "l": sorted(labels), "now": now, "exp": now + ttl_s, "ttl": ttl_s}
        self._call(lambda: self._connection().execute(sql, params))

    def mark_labels(self, run_key: str, labels: frozenset[str], *, now: float, ttl_s: float) -> None:
        s = self._s
        # the labels' marks are computed from the row's steps inside the statement (atomic)
        sql = (
            f"WITH old AS (DELETE FROM {s}.events WHERE run_key = %(k)s AND EXISTS "
            f"(SELECT 1 FROM {s}.runs WHERE key = %(k)s AND {_DEAD_ROW})) "
            f"INSERT INTO {s}.runs AS r VALUES (%(k)s, 0, %(l)s, "
            "(SELECT jsonb_object_agg('l:' || x, jsonb_build_array(0, %(now)s::float8)) "
            f"FROM unnest(%(l)s::text[]) x), %(exp)s, {_DL}) "
            "ON CONFLICT (key) DO UPDATE SET "
            f"steps = CASE WHEN {_DEAD_R} THEN 0 ELSE r.steps END, "
            f"marks = (CASE WHEN {_DEAD_R} THEN '{{}}'::jsonb ELSE r.marks END) || "
            "(SELECT jsonb_object_agg('l:' || x, jsonb_build_array("
            f"CASE WHEN {_DEAD_R} THEN 0 ELSE r.steps END, %(now)s::float8)) "
            "FROM unnest(%(l)s::text[]) x), "
            f"labels = ARRAY(SELECT DISTINCT x FROM unnest(CASE WHEN {_DEAD_R} "
            "THEN '{}'::text[] ELSE r.labels END || excluded.labels) x ORDER BY 1), "
            "expires_at = excluded.expires_at, dl = excluded.dl"
        )
        params = {"k": run_key, "l": sorted(labels), "now": now, "exp": now + ttl_s, "ttl": ttl_s}
        self._call(lambda: self._connection().execute(sql, params))

    def history(self, run_key: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._call(
            lambda: (
                self._connection()
                .execute(
                    f"SELECT doc FROM {self._s}.events WHERE run_key = %s "
                    f"AND NOT EXISTS ({_DEAD.format(s=self._s)}) ORDER BY step DESC LIMIT %s",
                    (run_key, run_key, max(min(limit, self.history_cap), 0)),
                )
                .fetchall()
            )
        )
        return [r[0] for r in reversed(rows)]

    def put_result(
        self, run_key: str, decision: str, doc: Mapping[str, Any], *, now: float, ttl_s: float
    ) -> None:
        s = self._s
        sql = (
            f"WITH old AS (DELETE FROM {s}.events WHERE run_key = %(k)s AND EXISTS "
            f"(SELECT 1 FROM {s}.runs WHERE key = %(k)s AND {_DEAD_ROW})), "
            f"res AS (INSERT INTO {s}.results VALUES (%(k)s, %(d)s, %(doc)s) "
            "ON CONFLICT (run_key, decision) DO UPDATE SET doc = excluded.doc) "
            f"INSERT INTO {s}.runs AS r VALUES (%(k)s, 0, '{{}}', '{{}}', %(exp)s, {_DL}) "
            "ON CONFLICT (key) DO UPDATE SET "
            f"steps = CASE WHEN {_DEAD_R} THEN 0 ELSE r.steps END, "
            f"marks = CASE WHEN {_DEAD_R} THEN '{{}}'::jsonb ELSE r.marks END, "
            f"labels = CASE WHEN {_DEAD_R} THEN '{{}}'::text[] ELSE r.labels END, "
            "expires_at = excluded.expires_at, dl = excluded.dl"
        )
        params = {
            "k": run_key,
            "d": decision,
            "doc": Jsonb(dict(doc)),
            "now": now,
            "exp": now + ttl_s,
            "ttl": ttl_s,
        }
        self._call(lambda: self._connection().execute(sql, params))
        if chance() * RESULTS_CHECK_EVERY < 1:
            # past results_bound, the run's settlements whose event is not kept go (docs/state.md)
            self._call(
                lambda: self._connection().execute(
                    f"DELETE FROM {s}.results WHERE run_key = %(k)s AND decision <> %(d)s "
                    f"AND (SELECT count(*) FROM {s}.results WHERE run_key = %(k)s) > %(n)s "
                    f"AND decision NOT IN (SELECT doc->>'decision' FROM {s}.events "
                    "WHERE run_key = %(k)s AND doc->>'decision' IS NOT NULL)",
                    {"k": run_key, "d": decision, "n": results_bound(self.history_cap)},
                )
            )

    def history_detail(self, run_key: str, limit: int) -> list[dict[str, Any]]:
        s = self._s
        rows = self._call(
            lambda: (
                self._connection()
                .execute(
                    f"SELECT e.doc, x.doc FROM {s}.events e LEFT JOIN {s}.results x ON "
                    "x.run_key = e.run_key AND x.decision = e.doc->>'decision' "
                    f"WHERE e.run_key = %s AND NOT EXISTS ({_DEAD.format(s=s)}) "
                    "ORDER BY e.step DESC LIMIT %s",
                    (run_key, run_key, max(min(limit, self.history_cap), 0)),
                )
                .fetchall()
            )
        )
        out = []
        for ev, res in reversed(rows):
            ev = dict(ev)
            if res is not None:
                ev["settlement"] = res
            out.append(ev)
        return out

    # ------------------------------------------------------------------ stops
    def set_stop(self, rec: StopRecord) -> None:
        check_stop(rec)
        self._call(
            lambda: self._connection().execute(
                f"INSERT INTO {self._s}.stops VALUES (%s, %s, %s) "
                "ON CONFLICT (scope, value) DO UPDATE SET rec = excluded.rec",
                (rec.scope, rec.value, Jsonb(stop_to_dict(rec))),
            )
        )

    def clear_stop(self, scope: str, value: str) -> StopRecord | None:
        got = self._one(
            f"DELETE FROM {self._s}.stops WHERE scope = %s AND value = %s RETURNING rec",
            (scope, value),
        )
        return None if got is None else stop_from_dict(got)

    def list_stops(self) -> list[StopRecord]:
        rows = self._call(lambda: self._connection().execute(f"SELECT rec FROM {self._s}.stops").fetchall())
        return sorted((stop_from_dict(r[0]) for r in rows), key=lambda s: (s.at, s.scope, s.value))

    # ------------------------------------------------------------------ idempotency
    def remember(self, key: str, payload: str, *, now: float, ttl_s: float) -> str | None:
        s = self._s
        # The upsert only overwrites an expired row; RETURNING tells which payload won.
        sql = (
            f"WITH prev AS (SELECT payload FROM {s}.idem "
            "WHERE key = %(k)s AND expires_at > %(n)s), "
            f"ins AS (INSERT INTO {s}.idem AS i VALUES (%(k)s, %(p)s, %(e)s) "
            "ON CONFLICT (key) DO UPDATE SET payload = excluded.payload, "
            "expires_at = excluded.expires_at WHERE i.expires_at <= %(n)s RETURNING 1) "
            f"SELECT (SELECT payload FROM {s}.idem WHERE key = %(k)s), "
            "(SELECT count(*) FROM ins), (SELECT payload FROM prev)"
        )
        params = {"k": key, "p": payload, "n": now, "e": now + ttl_s}
        row = self._call(lambda: self._connection().execute(sql, params).fetchone())
        assert row is not None
        if row[1]:
            return None
        if row[2] is not None:
            return str(row[2])
        # lost an insert race inside this statement: read the winner
        got = self._one(f"SELECT payload FROM {s}.idem WHERE key = %s", (key,))
        return None if got is None else str(got)

    # ------------------------------------------------------------------ records
    def put_record(self, kind: str, id: str, doc: Mapping[str, Any], *, ttl_s: float | None) -> None:
        t = time.time()
        exp = INF if ttl_s is None else t + ttl_s
        self._call(
            lambda: self._connection().execute(
                f"INSERT INTO {self._s}.records AS r VALUES (%s, %s, 1, %s, %s) "
                "ON CONFLICT (kind, id) DO UPDATE SET version = CASE WHEN r.expires_at > %s "
                "THEN r.version + 1 ELSE 1 END, doc = excluded.doc, "
                "expires_at = excluded.expires_at",
                (kind, id, Jsonb(dict(doc)), exp, t),
            )
        )

    def get_record(self, kind: str, id: str) -> tuple[int, dict[str, Any]] | None:
        row = self._call(
            lambda: (
                self._connection()
                .execute(
                    f"SELECT version, doc FROM {self._s}.records "
                    "WHERE kind = %s AND id = %s AND expires_at > %s",
                    (kind, id, time.time()),
                )
                .fetchone()
            )
        )
        return None if row is None else (int(row[0]), dict(row[1]))

    def cas_record(self, kind: str, id: str, version: int, doc: Mapping[str, Any]) -> bool:
        cur = self._call(
            lambda: self._connection().execute(
                f"UPDATE {self._s}.records SET version = version + 1, doc = %s "
                "WHERE kind = %s AND id = %s AND version = %s AND expires_at > %s",
                (Jsonb(dict(doc)), kind, id, version, time.time()),
            )
        )
        return cur.rowcount == 1

    def list_records(self, kind: str) -> list[dict[str, Any]]:
        rows = self._call(
            lambda: (
                self._connection()
                .execute(
                    f"SELECT doc FROM {self._s}.records WHERE kind = %s AND expires_at > %s ORDER BY id",
                    (kind, time.time()),
                )
                .fetchall()
            )
        )
        return [dict(r[0]) for r in rows]

    def ping(self) -> None:
        self._one("SELECT 1")

    def backend_pid(self) -> int:
        return int(self._one("SELECT pg_backend_pid()"))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
