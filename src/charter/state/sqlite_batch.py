"""SQLite hot path: one batch (idempotency, stops, hits, reservation, event, record) in one transaction.

The reads a batch needs (idempotency payload, the first stop that applies, every counter's
window total, the hold seen before and the first budget line's state) are ONE statement; the
writes follow. Called inside the store's ``BEGIN IMMEDIATE`` transaction, so reading first and
writing after is atomic.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from charter.rand import chance, nonce
from charter.state.sqlite_schema import (
    BELOW_SQL,
    HIT_WRITE,
    HOLD_WRITE,
    LINE_COLS,
    LINE_SQL,
    LIVE_SQL,
    RECORD_SQL,
    STOPS_PER_STATEMENT,
    STOPS_SQL,
    WSUM_WRITE,
)
from charter.state.types import (
    BUDGET_GRACE_S,
    HISTORY_CAP,
    HISTORY_PRUNE_EVERY,
    PRUNE_LAG_S,
    Batch,
    BatchResult,
    HitOp,
    HitResult,
    LineStatus,
    RecordOp,
    ReserveOp,
    ReserveResult,
    RunState,
    dumps,
    lines_from_json,
    lines_to_json,
    prune_margin,
    stop_from_dict,
)

INF = 1e308
#: Probability that a write also deletes the expired rows of the key it touches.
PRUNE_P = 1 / 32

_IDEM = "(SELECT payload FROM idem WHERE key=? AND expires_at>?)"
_STOP = "(SELECT rec FROM stops WHERE scope=? AND value=?)"
# A counter's running sum (wsums): s = sum of its hits with t > b; the boundary b only moves
# forward, to the window's lower end lo. Read per hit as the row and the sum of the hits the
# boundary passes when it moves to lo; ``w{i}`` is the hit's row, joined in by key.
_SUM = "w{i}.s, w{i}.b, (SELECT coalesce(sum(amount),0) FROM hits WHERE key=w{i}.key AND t>w{i}.b AND t<=?)"
_WSUM = (
    "SELECT x.s, x.b, (SELECT coalesce(sum(amount),0) FROM hits WHERE key=x.key AND t>x.b AND t<=?) "
    "FROM wsums x WHERE x.key=?"
)
_HITS_ABOVE = "SELECT coalesce(sum(amount),0) FROM hits WHERE key=? AND t>?"
_HITS_BELOW = "SELECT coalesce(sum(amount),0) FROM hits WHERE key=? AND t>? AND t<=?"
#: the hold seen before, then LINE_SQL's columns (with a positional parameter: now)
_LINE = "(SELECT result FROM holds WHERE id=?), " + LINE_COLS.replace("?2", "?")
_READS: dict[tuple[bool, int, int, bool], str] = {}


def read_sql(idem: bool, stops: int, sums: int, line: bool) -> str:
    """The one statement reading what a batch of this shape needs (cached per shape)."""
    key = (idem, stops, sums, line)
    sql = _READS.get(key)
    if sql is None:
        cols = [_IDEM] if idem else []
        if stops:  # usually nothing is stopped: one look at the table instead of a lookup per key
            some = ",".join([_STOP] * stops)
            cols.append(f"CASE WHEN EXISTS(SELECT 1 FROM stops) THEN coalesce({some}, NULL) END")
        cols += [_SUM.format(i=i) for i in range(sums)]
        if line:
            cols.append(_LINE)
        sql = "SELECT " + (", ".join(cols) or "1")
        if sums or line:
            sql += " FROM (SELECT 1)"
            sql += "".join(f" LEFT JOIN wsums w{i} ON w{i}.key=?" for i in range(sums))
        if line:
            sql += " LEFT JOIN budgets b ON b.key=?"
        _READS[key] = sql
    return sql


def apply(db: sqlite3.Connection, batch: Batch, cap: int = HISTORY_CAP) -> BatchResult:
    """The batch, in the caller's transaction; a run keeps its last ``cap`` events."""
    now = batch.now
    sk = batch.stop_keys
    stops_inline = len(sk) <= STOPS_PER_STATEMENT
    if not stops_inline:
        for i in range(0, len(sk), STOPS_PER_STATEMENT):  # in order
            part = sk[i : i + STOPS_PER_STATEMENT]
            row = db.execute(STOPS_SQL[len(part)], [x for kv in part for x in kv]).fetchone()
            if row[0] is not None:
                return BatchResult(stop=stop_from_dict(json.loads(row[0])))
    # counters read in the one statement: plain (not member) hits, when their keys are distinct
    # (a second hit on a key must see the first one's entry, so then each is read in turn)
    plain = [h for h in batch.hits if h.member is None]
    if len({h.key for h in plain}) != len(plain):
        plain = []
    rv = batch.reserve
    line = rv is not None and bool(rv.lines)
    idem = batch.idempotency_key
    params: list[Any] = []
    if idem is not None:
        params += (idem, now)
    if stops_inline:
        for kv in sk:
            params += kv
    # parameters in the order of the statement's text: columns first, then the joins' keys
    for h in plain:
        params.append(now - h.window_s)
    if rv is not None and line:
        k0 = rv.lines[0].key
        params += (rv.hold_id, now)
    for h in plain:
        params.append(h.key)
    if rv is not None and line:
        params.append(k0)
    sql = read_sql(idem is not None, len(sk) if stops_inline else 0, len(plain), line)
    row = db.execute(sql, params).fetchone()
    i = 1 if idem is not None else 0
    # INVARIANT: stops first, then a replay (a retried request is halted like any other)
    if stops_inline and sk:
        if row[i] is not None:
            return BatchResult(stop=stop_from_dict(json.loads(row[i])))
        i += 1
    if idem is not None and row[0] is not None:
        return BatchResult(replayed_payload=row[0])
    sums = {}
    for h in plain:
        sums[h.key] = row[i : i + 3]
        i += 3
    hits = tuple(
        _counted(db, h, now, sums[h.key]) if h.member is None and h.key in sums else hit(db, h, now)
        for h in batch.hits
    )
    blocked = False
    for got in hits:
        if got.limited or got.tripped:
            blocked = True
            break
    reserve = None
    if rv is not None and not blocked:
        reserve = _reserve(db, rv, now, row[i:] if line else None)
        blocked = not reserve.ok
    step = run = None
    if batch.event is not None:
        ev = batch.event
        steps, labels, marks = load_run(db, ev.run_key, now)
        if not blocked:
            steps += 1
            step = steps
            labels.update(ev.labels)
            for m in ev.marks:
                marks[m] = [step, now]
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES(?,?,?,?,?,?)",
                (
                    ev.run_key,
                    steps,
                    dumps(sorted(labels)),
                    dumps(marks),
                    now + ev.ttl_s,
                    time.time() + ev.ttl_s,
                ),
            )
            db.execute(
                "INSERT OR REPLACE INTO events VALUES(?,?,?)",
                (ev.run_key, step, dumps(ev.event)),
            )
            if step % HISTORY_PRUNE_EVERY == 0 and step > cap:
                prune_history(db, ev.run_key, step - cap)
        run = RunState(steps, frozenset(labels), {k: (v[0], v[1]) for k, v in marks.items()})
    recorded = batch.record is not None and not blocked
    if recorded:
        put_record(db, batch.record)  # type: ignore[arg-type]
    return BatchResult(hits=hits, reserve=reserve, step=step, run=run, recorded=recorded)


def _counted(db: sqlite3.Connection, op: HitOp, now: float, got: tuple[Any, ...] | None) -> HitResult:
    """A plain counter hit, from its running sum's row as read (``_SUM``: s, b, the sum of the
    hits in (b, lo]; s None when the key has no row), so the cost does not grow with the
    number of live entries."""
    key = op.key
    lo = now - op.window_s
    s, b, passed = (None, None, 0) if got is None else got
    total, ws, wb, moved = running_total(db, _HITS_ABOVE, _HITS_BELOW, key, lo, s, b, passed)
    if chance() < PRUNE_P:  # entries this old are outside every window still counted
        db.execute("DELETE FROM hits WHERE key=? AND t<=?", (key, lo - prune_margin(op.window_s)))
    limited = op.limit is not None and total + op.amount > op.limit
    # e: when every hit of the key is out of its window and its margin (the sweep drops the key
    # there: SQLiteStore._gc). The boundary only moves forward, to the window's lower end of the
    # latest hit read (counted or limited), so no hit is newer than wb + w: e only moves forward
    # too, and is that hit's time plus the window and its margin (types.prune_margin)
    w = op.window_s
    e = wb + w + w + (w if w > PRUNE_LAG_S else PRUNE_LAG_S)
    if not limited:
        total += op.amount
        if now > wb:  # INVARIANT: s counts exactly the hits above b
            ws += op.amount
        # the hit and its running sum in one statement (sqlite_schema.FUSED)
        db.execute(HIT_WRITE, (key, now, nonce(), op.amount, ws, wb, e))
        return HitResult(key, total, False, op.trip_above is not None and total > op.trip_above)
    if moved:
        db.execute(WSUM_WRITE, (key, ws, wb, e))
    return HitResult(key, total, True, op.trip_above is not None and total > op.trip_above)


def running_total(
    db: sqlite3.Connection,
    above_sql: str,
    below_sql: str,
    key: str,
    at: float,
    s: int | None,
    b: float | None,
    passed: int,
) -> tuple[int, int, float, bool]:
    """A running sum read at ``at`` (a window's lower end, or now for live holds): ``s`` sums a
    key's entries above the boundary ``b``, which only moves forward; ``passed`` is the sum of
    those in (b, at]. Returns (the total above ``at``, the sum and boundary to keep, whether
    they changed). No sum yet (``s`` None): one is started at ``at`` from the entries
    (``above_sql``: key, at). A caller whose clock lags the boundary counts down to its own
    ``at`` (``below_sql``: key, at, b) and moves nothing."""
    if s is None or b is None:
        (s,) = db.execute(above_sql, (key, at)).fetchone()
        return s, s, at, True
    if at > b:
        s -= passed
        return s, s, at, True
    if at < b:
        (below,) = db.execute(below_sql, (key, at, b)).fetchone()
        return s + below, s, b, False
    return s, s, b, False


def hit(db: sqlite3.Connection, op: HitOp, now: float) -> HitResult:
    """One counter hit, read and written in turn."""
    lo = now - op.window_s
    if op.member is None:
        return _counted(db, op, now, db.execute(_WSUM, (lo, op.key)).fetchone())
    limited = False
    if chance() < PRUNE_P:
        db.execute("DELETE FROM members WHERE key=? AND t<=?", (op.key, lo - prune_margin(op.window_s)))
    total, present = db.execute(
        "SELECT count(*), coalesce(max(member=?),0) FROM members WHERE key=? AND t>?",
        (op.member, op.key, lo),
    ).fetchone()
    if not present and op.limit is not None and total + 1 > op.limit:
        limited = True
    else:
        db.execute(
            "INSERT OR REPLACE INTO members(key, member, t, e) VALUES(?,?,?,?)",
            (op.key, op.member, now, now + op.window_s + prune_margin(op.window_s)),
        )
        total += 0 if present else 1
    tripped = op.trip_above is not None and total > op.trip_above
    return HitResult(op.key, total, limited, tripped)


def line_state(
    db: sqlite3.Connection,
    key: str,
    now: float,
    rolling_s: float | None,
    known: bool,
    row: tuple[Any, ...] | None = None,
) -> tuple[int, int, tuple[Any, Any] | None, tuple[int, float]]:
    """(used, reserved, stored (rolling_s, expires_at) or None, the running sum of live holds
    (rs, rb) a reservation writes back) for one budget key. ``known``: the caller reserves
    (a dead calendar key is started afresh).

    ``row`` is the result of ``LINE_SQL`` for the key when the caller already has it.
    """
    if row is None:
        row = db.execute(LINE_SQL, (key, now)).fetchone()
    total, r_s, exp, present, rs, rb, passed = row
    if not present:
        live, rs, rb, _ = running_total(db, LIVE_SQL, BELOW_SQL, key, now, None, None, 0)
        return 0, live, None, (rs, rb)
    if exp is not None and now >= exp + BUDGET_GRACE_S:
        if known:  # reserving on a dead calendar key: start it afresh
            db.execute("DELETE FROM budgets WHERE key=?", (key,))
            db.execute("DELETE FROM spends WHERE key=?", (key,))
            db.execute("DELETE FROM hold_lines WHERE key=?", (key,))
        return 0, 0, None, (0, now)
    # no running sum yet: a row made by a commit, or by an earlier version
    reserved, new_rs, new_rb, _ = running_total(db, LIVE_SQL, BELOW_SQL, key, now, rs, rb, passed)
    sums = (new_rs, new_rb)
    if chance() < PRUNE_P:
        # INVARIANT: only lines at or below the boundary (which no running sum counts) go
        db.execute(
            "DELETE FROM hold_lines WHERE key=? AND expires_at<=?",
            (key, now if rb is None else min(now, rb)),
        )
    roll = rolling_s if known else r_s
    if roll is None:
        return total, reserved, (r_s, exp), sums
    if chance() < PRUNE_P:
        db.execute("DELETE FROM spends WHERE key=? AND t<=?", (key, now - 2 * roll))
    (used,) = db.execute(
        "SELECT coalesce(sum(amount),0) FROM spends WHERE key=? AND t>?",
        (key, now - roll),
    ).fetchone()
    return used, reserved, (r_s, exp), sums


def _reserve(
    db: sqlite3.Connection, op: ReserveOp, now: float, first: tuple[Any, ...] | None
) -> ReserveResult:
    """``first``: the hold seen before and the first line's ``LINE_SQL`` row, read already."""
    if first is not None:
        prev, first = first[0], first[1:]
    else:
        got = db.execute("SELECT result FROM holds WHERE id=?", (op.hold_id,)).fetchone()
        prev = None if got is None else got[0]
    if prev is not None:
        ok, lines = json.loads(prev)
        return ReserveResult(bool(ok), lines_from_json(lines), True)
    statuses = []
    sums = []
    all_ok = True
    for line in op.lines:
        used, reserved, meta, rsb = line_state(db, line.key, now, line.rolling_s, True, first)
        first = None
        sums.append((meta, rsb))
        ok = used + reserved + line.amount <= line.limit
        if not ok:
            all_ok = False
        statuses.append(LineStatus(line.key, line.limit, used, reserved, line.amount, ok))
    result = ReserveResult(all_ok, tuple(statuses), False)
    if all_ok:
        exp = now + op.ttl_s
        lines = [[x.key, x.limit, x.amount, x.rolling_s, x.expires_at] for x in op.lines]
        doc, res = dumps(lines), dumps([True, lines_to_json(result.lines)])
        if len(op.lines) == 1:
            line = op.lines[0]
            meta, (rs, rb) = sums[0]
            if meta == (line.rolling_s, line.expires_at):  # the usual: one statement (FUSED)
                rs = rs + line.amount if exp > rb else rs
                db.execute(HOLD_WRITE, (op.hold_id, exp, doc, res, line.key, line.amount, rs, rb))
                return result
        db.execute("INSERT INTO holds VALUES(?,?,?,?,?)", (op.hold_id, "held", exp, doc, res))
        for line, (meta, (rs, rb)) in zip(op.lines, sums, strict=True):
            db.execute("INSERT INTO hold_lines VALUES(?,?,?,?)", (line.key, op.hold_id, line.amount, exp))
            # INVARIANT: rs counts exactly the key's hold lines expiring after rb
            rs = rs + line.amount if exp > rb else rs
            if meta == (line.rolling_s, line.expires_at):  # the row is there as it should be
                db.execute("UPDATE budgets SET rs=?, rb=? WHERE key=?", (rs, rb, line.key))
            else:
                db.execute(
                    "INSERT INTO budgets VALUES(?,0,?,?,?,?) ON CONFLICT(key) DO UPDATE SET "
                    "rolling_s=excluded.rolling_s, expires_at=excluded.expires_at, rs=excluded.rs, "
                    "rb=excluded.rb",
                    (line.key, line.rolling_s, line.expires_at, rs, rb),
                )
    return result


def load_run(
    db: sqlite3.Connection, run_key: str, now: float | None
) -> tuple[int, set[str], dict[str, list[Any]]]:
    """(steps, labels, marks) of a run; an expired one is empty. A run expires at ``expires_at`` on
    the writers' clock (``now``) and at its deadline ``dl`` on the store's (wall clock, ``ttl_s``
    after its last write: a Redis key's TTL), whichever comes first; a reader (``now`` None) only
    knows the store's. With ``now`` (a writer), an expired run's rows are deleted."""
    row = db.execute(
        "SELECT steps, labels, marks, expires_at, dl FROM runs WHERE key=?", (run_key,)
    ).fetchone()
    if row is None:
        return 0, set(), {}
    dl = row[4]
    if dl is not None and dl <= time.time():
        if now is None:
            return 0, set(), {}
    elif now is None or row[3] > now:
        return row[0], set(json.loads(row[1])), json.loads(row[2])
    db.execute("DELETE FROM runs WHERE key=?", (run_key,))
    db.execute("DELETE FROM events WHERE run_key=?", (run_key,))
    db.execute("DELETE FROM results WHERE run_key=?", (run_key,))
    db.execute("DELETE FROM run_grants WHERE run_key=?", (run_key,))
    return 0, set(), {}


def prune_history(db: sqlite3.Connection, run_key: str, upto: int) -> None:
    """Delete a run's events up to step ``upto`` and the settlements kept for them (as the
    memory and Redis stores drop a run's oldest events past the cap: docs/state.md)."""
    db.execute(
        "DELETE FROM results WHERE run_key=?1 AND decision IN (SELECT json_extract(doc, '$.decision') "
        "FROM events WHERE run_key=?1 AND step<=?2)",
        (run_key, upto),
    )
    db.execute("DELETE FROM events WHERE run_key=? AND step<=?", (run_key, upto))


def put_record(db: sqlite3.Connection, op: RecordOp) -> None:
    """Upsert a versioned record (version 1, or +1 over a live one); expiry is wall-clock."""
    t = time.time()
    exp = INF if op.ttl_s is None else t + op.ttl_s
    db.execute(RECORD_SQL, (op.kind, op.id, dumps(dict(op.doc)), exp, t))
