"""The trace log: a hash chain of records in SQLite, written in batches, with signed checkpoints."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from charter.trace.keys import load_or_create_key, sign_checkpoint
from charter.trace.record import GENESIS, canonical, decision_record, event_record, link

_SCHEMA = """
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


_FLUSH = "__flush__"


class TraceError(Exception):
    """The trace could not be written; decisions fail closed while this lasts."""


class TraceLog:
    """Appends decision and event records to a SQLite hash chain.

    Records are queued and written by a background thread in batches (``batch`` records or
    ``flush_s`` seconds, whichever first); ``durable=True`` writes each record before returning.
    Crash semantics: at most the records queued since the last flush (≤ batch, ≤ flush_s) are lost
    on a crash; ``close()`` (also run at interpreter exit) writes everything queued.
    INVARIANT: once a write fails, every later append raises TraceError, so the engine denies.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        key_path: str | Path | None = None,
        batch: int = 512,
        flush_s: float = 0.05,
        durable: bool = False,
        clock: Any = time.time,
    ):
        self.path = str(path)
        self.key_path = str(key_path) if key_path else self.path + ".key"
        self.batch = batch
        self.flush_s = flush_s
        self.durable = durable
        self.clock = clock
        self.secret_args: Mapping[str, frozenset[str]] = {}
        self._error: Exception | None = None
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        row = self._conn.execute("SELECT seq, hash FROM trace ORDER BY seq DESC LIMIT 1").fetchone()
        self._seq: int = row[0] if row else 0
        self._head: str = row[1] if row else GENESIS
        self._q: queue.Queue[tuple[str, Any, Any, float] | None] = queue.Queue()
        self._closed = False
        self._writer: threading.Thread | None = None
        if not durable:
            self._writer = threading.Thread(target=self._run, name="charter-trace", daemon=True)
            self._writer.start()
        atexit.register(self.close)

    # ---- the sink the engine calls -------------------------------------------------------
    def bind_policy(self, policy: Any) -> None:
        """Learn which tool arguments the policy marks secret (they are redacted)."""
        self.secret_args = {name: t.secret_args for name, t in policy.tools.items() if t.secret_args}

    def record_decision(self, decision: Any, request: Any) -> None:
        """Append a decision record (queued; serialised and hashed off the hot path)."""
        self._append("decision", decision, request)

    def record_event(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Append a settlement, approval, escalation, stop or resume record."""
        self._append(kind, dict(payload), None)

    def notify(self, kind: str, event: str, record: Mapping[str, Any]) -> None:
        """Notifier interface: every human intervention becomes a record."""
        payload = dict(record)
        payload["event"] = event
        self._append(kind, payload, None)

    def _append(self, kind: str, a: Any, b: Any) -> None:
        if self._error is not None:
            raise TraceError(f"trace log {self.path} is not writable: {self._error}")
        if self._closed:
            raise TraceError(f"trace log {self.path} is closed")
        item = (kind, a, b, self.clock())
        if self.durable:
            with self._lock:
                self._write([item])
        else:
            self._q.put(item)

    # ---- writing ----------------------------------------------------------------------------
    def _build(self, item: tuple[str, Any, Any, float]) -> dict[str, Any]:
        kind, a, b, at = item
        if kind == "decision":
            return decision_record(a.to_dict(), b.to_dict(), at, self.secret_args)
        ref = a.get("decision_id") or a.get("id")
        return event_record(kind, a, at, ref)

    def _write(self, items: list[tuple[str, Any, Any, float]]) -> None:
        rows = []
        seq, head = self._seq, self._head
        for item in items:
            rec = self._build(item)
            seq += 1
            rec["seq"] = seq
            rec["prev"] = head
            body = canonical(rec)
            h = link(head, body)
            rules = " ".join(r["id"] for r in rec.get("rules", []))
            rows.append(
                (
                    seq,
                    rec["id"],
                    rec["kind"],
                    rec["at"],
                    rec.get("outcome"),
                    rec.get("agent"),
                    rules,
                    rec.get("ref"),
                    head,
                    h,
                    body,
                )
            )
            head = h
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT INTO trace VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            self._error = exc
            raise TraceError(f"cannot write trace log {self.path}: {exc}") from exc
        self._seq, self._head = seq, head

    def _run(self) -> None:
        pending: list[tuple[str, Any, Any, float]] = []
        deadline: float | None = None
        stop = False
        while not stop:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            flushed: threading.Event | None = None
            try:
                item = self._q.get(timeout=timeout)
                if item is None:
                    stop = True
                elif item[0] == _FLUSH:
                    flushed = item[1]
                else:
                    pending.append(item)
                    if deadline is None:
                        deadline = time.monotonic() + self.flush_s
            except queue.Empty:
                pass
            due = stop or flushed is not None or len(pending) >= self.batch
            if pending and (due or time.monotonic() >= (deadline or 0)):
                try:
                    with self._lock:
                        self._write(pending)
                except TraceError:
                    pass  # recorded in self._error; later appends raise
                pending, deadline = [], None
            if flushed is not None:
                flushed.set()

    def flush(self, timeout_s: float = 30.0) -> None:
        """Write everything queued so far (returns when it is on disk)."""
        if self.durable or self._writer is None or self._closed:
            return
        done = threading.Event()
        self._q.put((_FLUSH, done, None, 0.0))
        done.wait(timeout_s)
        if self._error is not None:
            raise TraceError(f"trace log {self.path} is not writable: {self._error}")

    def close(self) -> None:
        """Write everything queued, then close (nothing is lost on a clean shutdown)."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._q.put(None)
            self._writer.join(30)
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    # ---- checkpoints ------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """Sign (length, head hash, time) with this log's Ed25519 key and store the checkpoint."""
        self.flush()
        key = load_or_create_key(self.key_path)
        with self._lock:
            length, head = self._seq, self._head
            cp = sign_checkpoint(key, length, head, self.clock())
            self._conn.execute(
                "INSERT INTO checkpoints VALUES (?,?,?,?,?)",
                (cp["length"], cp["head"], cp["at"], cp["signature"], cp["public_key"]),
            )
        return cp

    # ---- reading ----------------------------------------------------------------------------
    def rows(self) -> Iterator[tuple[int, str, str, str]]:
        """(seq, prev, hash, body) in order, for verification."""
        self.flush()
        conn = open_reader(self.path)
        try:
            yield from conn.execute("SELECT seq, prev, hash, body FROM trace ORDER BY seq")
        finally:
            conn.close()

    def checkpoints(self) -> list[dict[str, Any]]:
        """Stored checkpoints, oldest first."""
        with self._lock:
            cur = self._conn.execute(
                "SELECT length, head, at, signature, public_key FROM checkpoints ORDER BY rowid"
            ).fetchall()
        return [dict(zip(("length", "head", "at", "signature", "public_key"), r, strict=True)) for r in cur]


def open_reader(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to a trace log (errors if it does not exist)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no trace log at {path}")
    conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    return conn


def query(
    path: str | Path,
    *,
    since: float | None = None,
    outcome: str | None = None,
    agent: str | None = None,
    rule: str | None = None,
    kind: str | None = "decision",
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Records matching the filters, newest first."""
    conn = open_reader(path)
    where: list[str] = []
    args: list[Any] = []
    if kind:
        where.append("kind = ?")
        args.append(kind)
    if since is not None:
        where.append("at >= ?")
        args.append(since)
    if outcome:
        where.append("outcome = ?")
        args.append(outcome)
    if agent:
        where.append("agent = ?")
        args.append(agent)
    if rule:
        where.append("(' ' || rules || ' ') LIKE ?")
        args.append(f"% {rule} %")
    sql = "SELECT body FROM trace" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY seq DESC LIMIT ?"
    args.append(limit)
    out = [json.loads(r[0]) for r in conn.execute(sql, args)]
    conn.close()
    return out


def get(path: str | Path, record_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """One record by id, and the event records that refer to it (settlement, approvals...)."""
    conn = open_reader(path)
    row = conn.execute("SELECT body FROM trace WHERE id = ? ORDER BY seq LIMIT 1", (record_id,)).fetchone()
    rec = json.loads(row[0]) if row else None
    related: list[dict[str, Any]] = []
    if rec is not None:
        ids = [record_id]
        ap = (rec.get("obligations") or {}).get("approval_id")
        es = ((rec.get("obligations") or {}).get("escalation") or {}).get("id")
        ids += [x for x in (ap, es) if x]
        for rid in ids:
            related += [
                json.loads(r[0])
                for r in conn.execute(
                    "SELECT body FROM trace WHERE ref = ? AND kind != 'decision' ORDER BY seq", (rid,)
                )
            ]
    conn.close()
    return rec, related


def export_jsonl(path: str | Path, out: Any) -> int:
    """Write every record as one JSON line (with seq, prev and hash); returns the count."""
    conn = open_reader(path)
    n = 0
    for seq, prev, h, body in conn.execute("SELECT seq, prev, hash, body FROM trace ORDER BY seq"):
        out.write(json.dumps({"seq": seq, "prev": prev, "hash": h, "body": body}) + "\n")
        n += 1
    conn.close()
    return n


def default_path(store_url: str | None) -> str:
    """The trace next to a SQLite state store, else ./charter-trace.db."""
    if store_url and store_url.startswith("sqlite:///") and ":memory:" not in store_url:
        return store_url[len("sqlite:///") :].split("?")[0] + ".trace.db"
    return os.path.join(os.getcwd(), "charter-trace.db")
