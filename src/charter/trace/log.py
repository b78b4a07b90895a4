"""The trace log: a hash chain of records (SQLite or PostgreSQL) written in batches, signed checkpoints."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from charter.trace.keys import load_or_create_key, sign_checkpoint
from charter.trace.record import canonical, decision_record, event_record, index_of, link
from charter.trace.sink import (
    Built,
    Row,
    StoredRow,
    TraceError,
    default_key_path,
    display,
    open_reader,
    open_sink,
)

__all__ = ["TraceError", "TraceLog", "default_path", "export_jsonl", "get", "open_reader", "query"]

_FLUSH = "__flush__"


class TraceLog:
    """Appends decision and event records to a hash chain in SQLite (a file path) or PostgreSQL
    (a ``postgresql://`` URL; see docs/trace.md).

    Records are queued and written by a background thread in batches (``batch`` records or
    ``flush_s`` seconds, whichever first); ``durable=True`` writes each record before returning.
    Crash semantics: at most the records queued since the last flush (≤ batch, ≤ flush_s) are lost
    on a crash; ``close()`` (also run at interpreter exit) writes everything queued.
    Every batch is one transaction that holds the chain's lock and continues the stored head, so
    several processes may append to the same chain.
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
        self.display = display(self.path)
        self.key_path = str(key_path) if key_path else default_key_path(self.path)
        self.batch = batch
        self.flush_s = flush_s
        self.durable = durable
        self.clock = clock
        self.secret_args: Mapping[str, frozenset[str]] = {}
        self._error: Exception | None = None
        self._lock = threading.Lock()
        try:
            self._sink = open_sink(self.path)
            self._seq, self._head = self._sink.head()
        except Exception as exc:  # unreachable server, unwritable file: no trace, no decisions
            raise TraceError(f"cannot open trace log {self.display}: {type(exc).__name__}: {exc}") from exc
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
            raise TraceError(f"trace log {self.display} is not writable: {self._error}")
        if self._closed:
            raise TraceError(f"trace log {self.display} is closed")
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

    @staticmethod
    def _chain(recs: list[dict[str, Any]], seq: int, head: str) -> Built:
        """The rows of ``recs`` continuing the chain after record ``seq`` with hash ``head``."""
        rows: list[Row] = []
        for rec in recs:
            seq += 1
            rec["seq"] = seq
            rec["prev"] = head
            body = canonical(rec)
            h = link(head, body)
            rows.append((seq, *index_of(rec), head, h, body))
            head = h
        return rows, seq, head

    def _write(self, items: list[tuple[str, Any, Any, float]]) -> None:
        try:
            recs = [self._build(item) for item in items]
            # Hashed against the head this process last wrote; re-chained inside the append
            # transaction only when another process appended since.
            mine = self._chain(recs, self._seq, self._head)
            start = (self._seq, self._head)

            def build(seq: int, head: str) -> Built:
                return mine if (seq, head) == start else self._chain(recs, seq, head)

            self._seq, self._head = self._sink.append(build)
        except Exception as exc:  # fail closed on every error, whatever the sink
            self._error = exc
            raise TraceError(f"cannot write trace log {self.display}: {exc}") from exc

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
            raise TraceError(f"trace log {self.display} is not writable: {self._error}")

    def close(self) -> None:
        """Write everything queued, then close (nothing is lost on a clean shutdown)."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._q.put(None)
            self._writer.join(30)
        with contextlib.suppress(Exception):
            self._sink.close()

    def problem(self) -> str | None:
        """Why records cannot be written now (failed, closed, sink unreachable), or None."""
        if self._error is not None:
            return f"{self.display}: {self._error}"
        if self._closed:
            return f"{self.display}: closed"
        return self._sink.problem()

    # ---- checkpoints ------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """Sign (length, head hash, time) of the stored chain with this log's Ed25519 key and store
        the checkpoint (the head is read in the transaction, so other writers cannot interleave)."""
        self.flush()
        key = load_or_create_key(self.key_path)
        with self._lock:
            return self._sink.add_checkpoint(
                lambda length, head: sign_checkpoint(key, length, head, self.clock())
            )

    # ---- reading ----------------------------------------------------------------------------
    def rows(self) -> Iterator[StoredRow]:
        """(seq, prev, hash, body, index columns) in order, for verification."""
        self.flush()
        reader = open_reader(self.path)
        try:
            yield from reader.rows()
        finally:
            reader.close()

    def checkpoints(self) -> list[dict[str, Any]]:
        """Stored checkpoints, oldest first."""
        reader = open_reader(self.path)
        try:
            return reader.checkpoints()
        finally:
            reader.close()


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
    reader = open_reader(path)
    try:
        return [json.loads(b) for b in reader.bodies(where, args, newest_first=True, limit=limit)]
    finally:
        reader.close()


def get(path: str | Path, record_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """One record by id, and the event records that refer to it (settlement, approvals...)."""
    reader = open_reader(path)
    try:
        found = reader.bodies(["id = ?"], [record_id], newest_first=False, limit=1)
        rec = json.loads(found[0]) if found else None
        related: list[dict[str, Any]] = []
        if rec is not None:
            ids = [record_id]
            ap = (rec.get("obligations") or {}).get("approval_id")
            es = ((rec.get("obligations") or {}).get("escalation") or {}).get("id")
            ids += [x for x in (ap, es) if x]
            for rid in ids:
                where = ["ref = ?", "kind != 'decision'"]
                bodies = reader.bodies(where, [rid], newest_first=False, limit=None)
                related += [json.loads(b) for b in bodies]
    finally:
        reader.close()
    return rec, related


def export_jsonl(path: str | Path, out: Any) -> int:
    """Write every record as one JSON line (with seq, prev and hash); returns the count."""
    reader = open_reader(path)
    n = 0
    try:
        for seq, prev, h, body, _ in reader.rows():
            out.write(json.dumps({"seq": seq, "prev": prev, "hash": h, "body": body}) + "\n")
            n += 1
    finally:
        reader.close()
    return n


def default_path(store_url: str | None) -> str:
    """The trace next to a SQLite state store, else ./charter-trace.db."""
    if store_url and store_url.startswith("sqlite:///") and ":memory:" not in store_url:
        return store_url[len("sqlite:///") :].split("?")[0] + ".trace.db"
    return os.path.join(os.getcwd(), "charter-trace.db")
