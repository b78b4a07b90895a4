"""The PostgreSQL trace sink: the same chain and records in tables, appends serialised by an advisory lock."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from charter.extras import missing_extra

try:
    import psycopg
except ImportError as _exc:  # an optional dependency: name the extra to install
    raise missing_extra("postgres", "the PostgreSQL trace", _exc) from _exc

from charter.trace.record import GENESIS
from charter.trace.sink import (
    CHECKPOINT_FIELDS,
    INDEX_SQL,
    Build,
    Sign,
    StoredRow,
    TraceError,
    checked_bodies,
    display,
)

T = TypeVar("T")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_COLUMNS = "seq, id, kind, at, outcome, agent, rules, ref, prev, hash, body"
#: Batches up to this size are tried as one pipelined conditional INSERT first.
_OPTIMISTIC_ROWS = 256

DDL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.trace (
  seq bigint PRIMARY KEY,
  id text NOT NULL,
  kind text NOT NULL,
  at double precision NOT NULL,
  outcome text,
  agent text,
  rules text,
  ref text,
  prev text NOT NULL,
  hash text NOT NULL,
  body text NOT NULL
);
CREATE INDEX IF NOT EXISTS trace_id_idx ON {s}.trace(id);
CREATE INDEX IF NOT EXISTS trace_ref_idx ON {s}.trace(ref);
CREATE TABLE IF NOT EXISTS {s}.trace_checkpoints (
  n bigserial PRIMARY KEY,
  length bigint NOT NULL,
  head text NOT NULL,
  at double precision NOT NULL,
  signature text NOT NULL,
  public_key text NOT NULL
);
"""


def parse_url(url: str) -> tuple[str, str, float, int]:
    """(libpq DSN, schema, connect timeout s, statement timeout ms) from a trace URL.

    Recognised query parameters: ``schema`` (default ``charter``), ``connect_timeout``,
    ``statement_timeout_ms`` and ``key`` (the checkpoint key path); the rest go to libpq.
    """
    parts = urlsplit(url)
    q = dict(parse_qsl(parts.query))
    schema = q.pop("schema", "charter")
    if not _IDENT.match(schema):
        raise ValueError(f"invalid PostgreSQL schema name {schema!r}")
    timeout = float(q.pop("connect_timeout", "5"))
    stmt_ms = int(q.pop("statement_timeout_ms", "10000"))
    q.pop("key", None)
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(q, quote_via=quote), ""))
    return dsn, schema, timeout, stmt_ms


def _connect(dsn: str, timeout: float, stmt_ms: int, *, autocommit: bool) -> psycopg.Connection[Any]:
    conn = psycopg.connect(dsn, autocommit=autocommit, connect_timeout=max(1, int(timeout)))
    # A stuck lock holder or server becomes an error (and a fail-closed decision), never a hang.
    conn.execute(f"SET statement_timeout = {int(stmt_ms)}")
    if not autocommit:
        conn.commit()
    return conn


def _is_disconnect(exc: BaseException, conn: psycopg.Connection[Any] | None) -> bool:
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and (
        conn is None or conn.closed or conn.broken
    )


class PostgresSink:
    """One autocommit connection. Each append is one transaction that takes a transaction-level
    advisory lock for the chain, reads the head row and inserts the batch continuing it, so any
    number of processes append to one linear chain (``seq`` is also the primary key).

    A dropped connection is retried once on a new connection; if the first attempt's commit did
    reach the server (its last record is there), it is not written twice.
    """

    def __init__(self, url: str) -> None:
        self.location = url
        self.display = display(url)
        self._dsn, self.schema, self._timeout, self._stmt_ms = parse_url(url)
        self._s = f'"{self.schema}"'
        d = hashlib.blake2b(f"charter-trace|{self.schema}".encode(), digest_size=8).digest()
        self._lock_id = int.from_bytes(d, "big", signed=True)
        self._lock = threading.Lock()
        self.conn: psycopg.Connection[Any] | None = None
        #: The head this process last wrote or read (the optimistic append continues it).
        self._known: tuple[int, str] | None = None
        self._inserts: dict[int, str] = {}
        self._call(self._setup)

    # ---- plumbing -------------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed or self.conn.broken:
            if self.conn is not None:
                self.conn.close()
            self.conn = _connect(self._dsn, self._timeout, self._stmt_ms, autocommit=True)
        return self.conn

    def _call(
        self, fn: Callable[[psycopg.Connection[Any]], T], committed: Callable[[], T | None] | None = None
    ) -> T:
        """fn(connection) under the lock; after a dropped connection, once more on a new one."""
        with self._lock:
            try:
                return fn(self._connection())
            except psycopg.Error as exc:
                if not _is_disconnect(exc, self.conn):
                    raise
            done = committed() if committed is not None else None
            return done if done is not None else fn(self._connection())

    def _setup(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_id,))
            conn.execute(DDL.format(s=self._s))

    def _head(self, conn: psycopg.Connection[Any]) -> tuple[int, str]:
        row = conn.execute(f"SELECT seq, hash FROM {self._s}.trace ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), row[1]) if row else (0, GENESIS)

    # ---- the sink -------------------------------------------------------------------------
    def head(self) -> tuple[int, str]:
        self._known = self._call(self._head)
        return self._known

    def append(self, build: Build) -> tuple[int, str]:
        """Small batches continuing the head this process knows go in one pipelined round trip:
        take the chain lock, INSERT only if the stored head is still that one, commit. When another
        process appended since (nothing inserted), or for big batches, the locked transaction reads
        the head first. Every path holds the lock, so the chain stays linear and no writer starves."""
        tried: list[tuple[int, str]] = []

        def optimistic(conn: psycopg.Connection[Any]) -> tuple[int, str] | None:
            assert self._known is not None
            rows, seq, head = build(*self._known)
            if len(rows) > _OPTIMISTIC_ROWS:
                return None
            tried.append((seq, head))
            with conn.pipeline(), conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_id,))
                cur = conn.execute(self._insert(len(rows)), [*(v for r in rows for v in r), self._known[1]])
            if cur.rowcount == len(rows):
                return seq, head
            tried.clear()  # another process appended since: nothing was inserted
            return None

        def locked(conn: psycopg.Connection[Any]) -> tuple[int, str]:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_id,))
                rows, seq, head = build(*self._head(conn))
                tried.append((seq, head))
                with conn.cursor() as cur, cur.copy(f"COPY {self._s}.trace ({_COLUMNS}) FROM STDIN") as cp:
                    for r in rows:
                        cp.write_row(r)
            return seq, head

        def committed() -> tuple[int, str] | None:
            # The connection dropped: did the last attempt's commit reach the server anyway?
            if not tried:
                return None
            seq, head = tried[-1]
            row = (
                self._connection()
                .execute(f"SELECT hash FROM {self._s}.trace WHERE seq = %s", (seq,))
                .fetchone()
            )
            return (seq, head) if row and row[0] == head else None

        done = self._call(optimistic, committed) if self._known is not None else None
        self._known = done if done is not None else self._call(locked, committed)
        return self._known

    def _insert(self, n: int) -> str:
        """INSERT n rows if the stored head (the last parameter) is still the one they continue."""
        sql = self._inserts.get(n)
        if sql is None:
            one = "(" + ", ".join(["%s"] * 11) + ")"
            t = f"{self._s}.trace"
            sql = (
                f"INSERT INTO {t} ({_COLUMNS}) "
                f"SELECT * FROM (VALUES {', '.join([one] * n)}) AS v ({_COLUMNS}) "
                f"WHERE coalesce((SELECT hash FROM {t} ORDER BY seq DESC LIMIT 1), '{GENESIS}') = %s"
            )
            if len(self._inserts) < 64:
                self._inserts[n] = sql
        return sql

    def add_checkpoint(self, sign: Sign) -> dict[str, Any]:
        def write(conn: psycopg.Connection[Any]) -> dict[str, Any]:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_id,))
                cp = sign(*self._head(conn))
                conn.execute(
                    f"INSERT INTO {self._s}.trace_checkpoints ({', '.join(CHECKPOINT_FIELDS)}) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    tuple(cp[k] for k in CHECKPOINT_FIELDS),
                )
            return cp

        return self._call(write)

    def problem(self) -> str | None:
        try:
            self._call(lambda conn: conn.execute("SELECT 1").fetchone())
        except psycopg.Error as exc:
            return f"{self.display}: {type(exc).__name__}: {exc}"
        return None

    def close(self) -> None:
        with self._lock:
            if self.conn is not None:
                self.conn.close()


class PostgresReader:
    """A read-only transaction on the chain's tables (FileNotFoundError if they do not exist)."""

    def __init__(self, url: str) -> None:
        dsn, schema, timeout, stmt_ms = parse_url(url)
        self._s = f'"{schema}"'
        try:
            self.conn = _connect(dsn, timeout, stmt_ms, autocommit=False)
            self.conn.read_only = True
            row = self.conn.execute("SELECT to_regclass(%s)", (f"{self._s}.trace",)).fetchone()
        except psycopg.Error as exc:
            raise TraceError(f"cannot read trace log {display(url)}: {type(exc).__name__}: {exc}") from None
        if row is None or row[0] is None:
            self.conn.close()
            raise FileNotFoundError(f"no trace log at {display(url)}")

    def rows(self) -> Iterator[StoredRow]:
        with self.conn.cursor(name="charter_trace_rows") as cur:
            cur.itersize = 5000
            cur.execute(f"SELECT seq, prev, hash, body, {INDEX_SQL} FROM {self._s}.trace ORDER BY seq")
            for seq, prev, h, body, *index in cur:
                yield seq, prev, h, body, tuple(index)

    def batch(self, after: int, limit: int) -> list[StoredRow]:
        try:
            cur = self.conn.execute(
                f"SELECT seq, prev, hash, body, {INDEX_SQL} FROM {self._s}.trace "
                "WHERE seq > %s ORDER BY seq LIMIT %s",
                (after, limit),
            )
            return [(int(seq), prev, h, body, tuple(index)) for seq, prev, h, body, *index in cur]
        finally:
            self.conn.rollback()  # end the read-only transaction: the next call sees later appends

    def checkpoints(self) -> list[dict[str, Any]]:
        cur = self.conn.execute(
            f"SELECT {', '.join(CHECKPOINT_FIELDS)} FROM {self._s}.trace_checkpoints ORDER BY n"
        )
        return [dict(zip(CHECKPOINT_FIELDS, r, strict=True)) for r in cur]

    def bodies(
        self, where: Sequence[str], args: Sequence[Any], *, newest_first: bool, limit: int | None
    ) -> list[str]:
        sql = f"SELECT seq, body, {INDEX_SQL} FROM {self._s}.trace" + (
            " WHERE " + " AND ".join(where) if where else ""
        )
        sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
        params = list(args)
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return checked_bodies(self.conn.execute(sql.replace("?", "%s"), params))

    def close(self) -> None:
        self.conn.close()
