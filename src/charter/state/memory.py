"""In-process state store behind one lock: the semantic reference for every backend."""

from __future__ import annotations

import heapq
import json
import marshal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from charter.state.types import (
    BUDGET_GRACE_S,
    EMPTY_RUN,
    HISTORY_CAP,
    HOLD_RETAIN_S,
    LABEL_MARK,
    Batch,
    BatchResult,
    BudgetLine,
    CommitResult,
    GrantRecord,
    HitOp,
    HitResult,
    LineStatus,
    RecordOp,
    ReserveOp,
    ReserveResult,
    RunState,
    StopRecord,
    check_stop,
    dumps,
    narrowed,
    pick_grant_uses,
    prune_margin,
    results_bound,
)
from charter.state.windows import Holds, Members, Series


def _freeze(doc: Mapping[str, Any]) -> bytes:
    """A record's snapshot (marshal: a third of JSON's cost on the approval path)."""
    return marshal.dumps(dict(doc))


def _thaw(snapshot: bytes) -> dict[str, Any]:
    """A fresh copy of a record with JSON's types, as the other stores give it back."""
    doc: dict[str, Any] = _own(marshal.loads(snapshot))
    return doc


#: the classes a JSON tree's leaves have (kept as they are: immutable)
_LEAVES = frozenset({str, int, float, bool, type(None)})
#: events a run's history may hold past HISTORY_CAP before the oldest are dropped (in one go, so
#: the list is not moved at every event)
_HISTORY_SLACK = 512


def _own(v: Any) -> Any:
    """A copy of a JSON tree with JSON's types: exactly what ``json.loads(dumps(v))`` gives, in a
    third of its time (leaves are immutable, so they are shared; anything that is not a plain
    dict, list, tuple or leaf takes the JSON round trip itself)."""
    c = v.__class__
    if c in _LEAVES:
        return v
    if c is dict:
        out = {}
        for k, x in v.items():
            if k.__class__ is not str:
                return json.loads(dumps(v))
            xc = x.__class__
            if xc in _LEAVES:
                out[k] = x
            elif xc is list or xc is tuple:  # (a list of labels, of recipients: a call less)
                out[k] = [y if y.__class__ in _LEAVES else _own(y) for y in x]
            else:
                out[k] = _own(x)
        return out
    if c is list or c is tuple:
        return [x if x.__class__ in _LEAVES else _own(x) for x in v]
    return json.loads(dumps(v))


@dataclass
class _Budget:
    total: int = 0
    rolling_s: float | None = None
    expires_at: float | None = None
    spends: Series = field(default_factory=Series)
    holds: Holds = field(default_factory=Holds)
    #: when the last hold record on it is forgotten (its expiry + HOLD_RETAIN_S): till then a
    #: commit or a replay may read the budget, so it is never reclaimed before
    retain: float = float("-inf")


@dataclass(slots=True)  # one per reservation: no instance dict
class _Hold:
    lines: tuple[BudgetLine, ...]
    expires_at: float
    result: ReserveResult
    state: str = "held"


@dataclass
class _Run:
    steps: int = 0
    labels: set[str] = field(default_factory=set)
    marks: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: the events as stored (the store's own copies, with JSON's types), oldest first; at most
    #: HISTORY_CAP (+ _HISTORY_SLACK until the oldest are dropped) are kept. Nobody changes them:
    #: ``history`` hands out copies
    events: list[dict[str, Any]] = field(default_factory=list)
    #: the same events, each with its ``settlement`` once settled (the very event dict until
    #: then). history_detail hands out these very dicts: readers never change what they are
    #: given, and put_result replaces an event's dict instead of changing it
    parsed: list[dict[str, Any]] = field(default_factory=list)
    #: decision id -> its settlement's history detail (as JSON gives it back), see put_result
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: decision id -> its event's number (events ever appended before it; ``dropped`` of them are gone)
    index: dict[str, int] = field(default_factory=dict)
    #: events dropped from the front of ``events`` and ``parsed`` (see HISTORY_CAP)
    dropped: int = 0
    #: on the caller's clock (``now + ttl_s`` of the last write): a write at or after it starts afresh
    expires_at: float = float("inf")
    #: on the store's clock (``clock() + ttl_s`` at the last write), like a Redis key's TTL: from
    #: then on the run reads as empty and the store reclaims it (MemoryStore._reclaim_runs)
    deadline: float = float("inf")
    #: events kept (the store's history_cap)
    cap: int = HISTORY_CAP
    #: run grant instances by id, lowest first (charter.engine.grants)
    grants: dict[str, GrantRecord] = field(default_factory=dict)

    def append(self, doc: dict[str, Any]) -> None:
        """Keep an event (the store's own copy), with its settlement if it came first."""
        decision = str(doc.get("decision"))
        settled = self.results.get(decision)
        self.index[decision] = self.dropped + len(self.events)
        self.events.append(doc)
        self.parsed.append(doc if settled is None else {**doc, "settlement": settled})
        if len(self.events) > self.cap + _HISTORY_SLACK:
            self._trim()

    def _trim(self) -> None:
        """Drop the events past HISTORY_CAP, and what is kept for them (a long run's memory is
        bounded: docs/state.md)."""
        gone = len(self.events) - self.cap
        index, results = self.index, self.results
        for i, ev in enumerate(self.events[:gone]):
            decision = str(ev.get("decision"))
            if index.get(decision) == self.dropped + i:  # (a later event may have the same id)
                del index[decision]
                results.pop(decision, None)
        del self.events[:gone]
        del self.parsed[:gone]
        self.dropped += gone

    def position(self, decision: str) -> int | None:
        """Where the event of ``decision`` is in ``parsed`` (None: no such event kept)."""
        n = self.index.get(decision)
        return None if n is None else n - self.dropped


def _budget_due(b: _Budget) -> float:
    """When a budget reads as absent ((0, 0), as a new one does) for good, and no hold record
    refers to it; ``inf``: not while it keeps a charge (an all-time budget's total)."""
    if b.expires_at is not None:
        due = b.expires_at + BUDGET_GRACE_S
    elif b.rolling_s is not None:
        newest = b.spends.newest()
        due = float("-inf") if newest is None else newest + 2 * b.rolling_s
    else:
        due = float("-inf") if b.total == 0 else float("inf")
    return due if due > b.retain else b.retain


class MemoryStore:
    """Dictionaries under a lock; single process only.

    ``clock``: the store's own clock (seconds), on which a run's keys live ``ttl_s`` past its last
    write, as a Redis key does on the server's (the caller's ``now`` may be any clock: a test's, an
    import's past times). ``history_cap``: the events kept per run (docs/state.md).
    """

    backend = "memory"

    def __init__(self, *, clock: Callable[[], float] = time.time, history_cap: int = HISTORY_CAP) -> None:
        if history_cap < 1:
            raise ValueError("history_cap must be at least 1")
        self._clock = clock
        self.history_cap = history_cap
        self._lock = threading.Lock()
        self._windows: dict[str, Series] = {}
        self._members: dict[str, Members] = {}
        #: (due, is members, key, window_s): one entry per rate window, due when its newest entry
        #: may be past every window a hit still counts (MemoryStore._reclaim_windows)
        self._window_expiry: list[tuple[float, bool, str, float]] = []
        self._budgets: dict[str, _Budget] = {}
        #: (due, key): one entry per budget, due when it may read as absent (_reclaim_budgets)
        self._budget_expiry: list[tuple[float, str]] = []
        self._holds: dict[str, _Hold] = {}
        self._hold_expiry: list[tuple[float, str]] = []  # (forget after, hold id), a heap
        self._runs: dict[str, _Run] = {}
        #: (deadline, run key), a heap with at most one entry per run (pushed when the run is made;
        #: a popped run whose deadline moved on is pushed again): reclaiming costs O(log runs) per
        #: run reclaimed, never a scan of every run
        self._run_expiry: list[tuple[float, str]] = []
        #: (expires_at, key) of remembered payloads; (expires_at, kind, id) of records (one entry
        #: per record, as for runs)
        self._idem_expiry: list[tuple[float, str]] = []
        self._record_expiry: list[tuple[float, str, str]] = []
        self._stops: dict[tuple[str, str], StopRecord] = {}
        self._idem: dict[str, tuple[str, float]] = {}
        self._records: dict[tuple[str, str], tuple[int, bytes, float]] = {}

    # ------------------------------------------------------------------ hot path
    @property
    def stops_table(self) -> Mapping[tuple[str, str], StopRecord]:
        """The live table of active stops, (scope, value) -> record; read-only for callers.

        INVARIANT: the same mapping for the store's lifetime (never rebound), so the engine's
        lane can test it for emptiness before every decision without a call.
        """
        return self._stops

    def active_stop(self, keys: Sequence[tuple[str, str]]) -> StopRecord | None:
        """The first active stop among ``keys`` (a read of the stop table; no lock needed)."""
        stops = self._stops
        if not stops:
            return None
        for k in keys:
            found = stops.get(k)
            if found is not None:
                return found
        return None

    def apply(self, batch: Batch) -> BatchResult:
        now = batch.now
        with self._lock:
            # INVARIANT: stops first, then a replay (a retried request is halted like any other)
            stops = self._stops
            if stops:  # (nothing stopped, the usual case: no key looked up)
                for sk in batch.stop_keys:
                    stop = stops.get(sk)
                    if stop is not None:
                        return BatchResult(stop=stop)
            if batch.idempotency_key is not None:
                got = self._idem.get(batch.idempotency_key)
                if got is not None and got[1] > now:
                    return BatchResult(replayed_payload=got[0])
            uses: tuple[GrantRecord, ...] = ()
            if batch.grant_use is not None:
                # checked before anything is counted: a refused grant use writes nothing
                gr = self._live(batch.grant_use.run_key)  # (a run past its deadline has none)
                picked = None if gr is None else pick_grant_uses(gr.grants, batch.grant_use)
                if picked is None:
                    return BatchResult(grant_refused=True)
                uses = picked
            hits = tuple([self._hit(h, now) for h in batch.hits]) if batch.hits else ()
            blocked = False
            for h in hits:
                if h.limited or h.tripped:
                    blocked = True
                    break
            reserve = None
            if batch.reserve is not None and not blocked:
                reserve = self._reserve(batch.reserve, now)
                blocked = not reserve.ok
            step = None
            run = None
            if batch.event is not None:
                ev = batch.event
                t = self._clock()
                r = self._run(ev.run_key, now, t)
                if not blocked:
                    r.steps += 1
                    step = r.steps
                    # the store's own copy (the caller's arguments may change after), no JSON text
                    r.append(_own(ev.event))
                    r.labels.update(ev.labels)
                    for m in ev.marks:
                        r.marks[m] = (step, now)
                    r.expires_at = now + ev.ttl_s
                    r.deadline = t + ev.ttl_s
                if batch.want_run:
                    run = self._snapshot(r)
            recorded = batch.record is not None and not blocked
            if recorded:
                self._put(batch.record)  # type: ignore[arg-type]
            if uses and not blocked:
                gr = self._runs.get(batch.grant_use.run_key)  # type: ignore[union-attr]
                if gr is not None:  # (a new run made by this batch may have reclaimed another)
                    for g in uses:
                        gr.grants[g.id] = g
            elif blocked:
                uses = ()
            return BatchResult(
                hits=hits, reserve=reserve, step=step, run=run, recorded=recorded, grant_uses=uses
            )

    def _hit(self, op: HitOp, now: float) -> HitResult:
        lo = now - op.window_s
        limited = False
        if op.member is not None:
            members = self._members.get(op.key)
            if members is None:
                members = self._members[op.key] = Members()
                self._new_window(True, op.key, op.window_s, now)
            members.prune(lo - prune_margin(op.window_s))
            total = members.count_after(lo)
            t_old = members.get(op.member)
            present = t_old is not None and t_old > lo
            if not present and op.limit is not None and total + 1 > op.limit:
                limited = True
            else:
                members.put(op.member, now)
                if not present:
                    total += 1
        else:
            win = self._windows.get(op.key)
            if win is None:
                win = self._windows[op.key] = Series()
                self._new_window(False, op.key, op.window_s, now)
            total, limited = win.hit(lo - prune_margin(op.window_s), lo, now, op.amount, op.limit)
        tripped = op.trip_above is not None and total > op.trip_above
        return HitResult(op.key, total, limited, tripped)

    def _new_window(self, members: bool, key: str, window_s: float, now: float) -> None:
        """Queue a new rate window (made by a hit at ``now``), first reclaiming the windows due."""
        heap = self._window_expiry
        if heap and heap[0][0] <= now:
            self._reclaim_windows(now)
        heapq.heappush(heap, (now + window_s + prune_margin(window_s), members, key, window_s))

    def _reclaim_windows(self, now: float) -> None:
        """Drop the rate windows whose every entry a hit at ``now`` would prune (stamped at or
        before ``now - window_s - prune_margin(window_s)``): an empty window reads as no window.
        One still holding a newer entry is queued again at its newest entry's due time."""
        heap, series, members = self._window_expiry, self._windows, self._members
        while heap and heap[0][0] <= now:
            _, is_members, key, w = heapq.heappop(heap)
            table: dict[str, Any] = members if is_members else series
            win = table.get(key)
            if win is None:
                continue
            newest = win.newest()
            margin = w + prune_margin(w)
            if newest is None or newest <= now - margin:
                del table[key]
            else:
                heapq.heappush(heap, (newest + margin, is_members, key, w))

    def _budget(self, key: str, now: float) -> _Budget:
        b = self._budgets.get(key)
        if b is not None and b.expires_at is not None and now >= b.expires_at + BUDGET_GRACE_S:
            # (its entry is still queued: it follows the new one, kept while a hold on the old
            # one is: a commit of that hold books onto the key as it is then)
            b = self._budgets[key] = _Budget(retain=b.retain)
        elif b is None:
            heap = self._budget_expiry
            if heap and heap[0][0] < now:  # (strictly: not one this batch made, still in use)
                self._reclaim_budgets(now)
            b = self._budgets[key] = _Budget()
            heapq.heappush(heap, (now, key))  # (an empty budget: gone once no hold needs it)
        return b

    def _reclaim_budgets(self, now: float) -> None:
        """Drop the budgets that read as absent at ``now`` and that no kept hold record refers to
        (a calendar period past its grace; a rolling budget whose spends are all past twice its
        window; one never charged): reading one gives (0, 0) as reading no budget does. A budget
        that may still count is queued again."""
        self._gc(now)  # (hold records past their retention first: none then refers to a dropped budget)
        heap, budgets = self._budget_expiry, self._budgets
        while heap and heap[0][0] < now:
            _, key = heapq.heappop(heap)
            b = budgets.get(key)
            if b is None:
                continue
            due = _budget_due(b)
            if due < now:
                del budgets[key]
            else:
                heapq.heappush(heap, (min(due, now + BUDGET_GRACE_S), key))

    @staticmethod
    def _used_reserved(b: _Budget, now: float) -> tuple[int, int]:
        if b.rolling_s is not None:
            lo = now - b.rolling_s
            b.spends.prune(lo - b.rolling_s)
            used = b.spends.total_after(lo)
        else:
            used = b.total
        return used, b.holds.expire(now)

    def _reserve(self, op: ReserveOp, now: float) -> ReserveResult:
        old = self._holds.get(op.hold_id)
        if old is not None:
            return ReserveResult(old.result.ok, old.result.lines, True)
        statuses = []
        all_ok = True
        for line in op.lines:
            b = self._budget(line.key, now)
            b.rolling_s = line.rolling_s
            used, reserved = self._used_reserved(b, now)
            ok = used + reserved + line.amount <= line.limit
            if not ok:
                all_ok = False
            statuses.append(LineStatus(line.key, line.limit, used, reserved, line.amount, ok))
        result = ReserveResult(all_ok, tuple(statuses), False)
        if all_ok:
            exp = now + op.ttl_s
            retain = exp + HOLD_RETAIN_S
            for line in op.lines:
                b = self._budgets[line.key]
                b.expires_at = line.expires_at
                b.holds.add(op.hold_id, line.amount, exp)
                if retain > b.retain:
                    b.retain = retain
            self._holds[op.hold_id] = _Hold(op.lines, exp, result)
            heap = self._hold_expiry
            heapq.heappush(heap, (retain, op.hold_id))
            if heap[0][0] <= now:  # (holds never committed are forgotten too, not only on commit)
                self._gc(now)
        return result

    def _run(self, run_key: str, now: float, t: float) -> _Run:
        """The run a write at ``now`` (store clock ``t``) goes to: a fresh one when it expired on
        either clock. A fresh run reads as gone until the caller touches it (``_touch``)."""
        r = self._runs.get(run_key)
        if r is None:
            heap = self._run_expiry
            if heap and heap[0][0] <= t:  # (before the new run is queued: it is not due yet)
                self._reclaim_runs(t)
            r = self._runs[run_key] = _Run(expires_at=now, deadline=t, cap=self.history_cap)
            heapq.heappush(heap, (t, run_key))  # moved on to its deadline when popped
        elif r.expires_at <= now or r.deadline <= t:
            # (its entry is still in the heap: it follows the new run's deadline when popped)
            r = self._runs[run_key] = _Run(expires_at=now, deadline=t, cap=self.history_cap)
        return r

    @staticmethod
    def _touch(r: _Run, now: float, t: float, ttl_s: float) -> None:
        r.expires_at = now + ttl_s
        r.deadline = t + ttl_s

    def _live(self, run_key: str) -> _Run | None:
        """The run as a reader sees it: None once its deadline passed (like an expired Redis key)."""
        r = self._runs.get(run_key)
        return None if r is None or r.deadline <= self._clock() else r

    def _reclaim_runs(self, t: float) -> None:
        """Drop the runs whose deadline passed by ``t``; a run written since its entry was pushed
        is pushed again at its current deadline (one entry per run)."""
        heap, runs = self._run_expiry, self._runs
        while heap and heap[0][0] <= t:
            _, key = heapq.heappop(heap)
            r = runs.get(key)
            if r is None:
                continue
            if r.deadline <= t:
                del runs[key]
            else:
                heapq.heappush(heap, (r.deadline, key))

    @staticmethod
    def _snapshot(r: _Run) -> RunState:
        if r.grants:
            return RunState(r.steps, frozenset(r.labels), dict(r.marks), tuple(r.grants.values()))
        return RunState(r.steps, frozenset(r.labels), dict(r.marks))

    # ------------------------------------------------------------------ holds
    def commit(self, hold_id: str, actual: int | None, *, now: float) -> CommitResult:
        with self._lock:
            h = self._holds.get(hold_id)
            if h is None:
                return CommitResult(False, False, found=False)
            if h.state == "committed":
                return CommitResult(True, True, self._statuses(h, None, now))
            if h.state != "held" or h.expires_at <= now:
                return CommitResult(False, False)
            for line in h.lines:
                b = self._budgets[line.key]
                spend = line.amount if actual is None else actual
                b.holds.drop(hold_id)
                b.total += spend
                if b.rolling_s is not None and spend:
                    b.spends.add(now, spend)
            h.state = "committed"
            self._gc(now)
            return CommitResult(True, False, self._statuses(h, actual, now))

    def _statuses(self, h: _Hold, actual: int | None, now: float) -> tuple[LineStatus, ...]:
        out = []
        for line in h.lines:
            used, reserved = self._used_reserved(self._budgets[line.key], now)
            amount = line.amount if actual is None else actual
            out.append(LineStatus(line.key, line.limit, used, reserved, amount, used <= line.limit))
        return tuple(out)

    def release(self, hold_id: str, *, now: float) -> bool:
        with self._lock:
            h = self._holds.get(hold_id)
            if h is None or h.state != "held" or h.expires_at <= now:
                return False
            for line in h.lines:
                self._budgets[line.key].holds.drop(hold_id)
            h.state = "released"
            return True

    def _gc(self, now: float) -> None:
        """Forget hold records kept past their retention (a heap: no scan of every hold)."""
        heap, holds = self._hold_expiry, self._holds
        while heap and heap[0][0] <= now:
            _, hid = heapq.heappop(heap)
            holds.pop(hid, None)

    def budget_status(self, keys: Sequence[str], *, now: float) -> dict[str, tuple[int, int]]:
        with self._lock:
            out = {}
            for k in keys:
                b = self._budgets.get(k)
                expired = b is not None and b.expires_at is not None
                if b is None or (expired and now >= (b.expires_at or 0) + BUDGET_GRACE_S):
                    out[k] = (0, 0)
                else:
                    out[k] = self._used_reserved(b, now)
            return out

    def ledger_total(self, key: str) -> int:
        with self._lock:
            b = self._budgets.get(key)
            return 0 if b is None else b.total

    # ------------------------------------------------------------------ runs
    def run_state(self, run_key: str) -> RunState:
        with self._lock:
            r = self._live(run_key)
            return EMPTY_RUN if r is None else self._snapshot(r)

    def add_labels(self, run_key: str, labels: frozenset[str], *, now: float, ttl_s: float) -> None:
        with self._lock:
            t = self._clock()
            r = self._run(run_key, now, t)
            r.labels.update(labels)
            self._touch(r, now, t, ttl_s)

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
        with self._lock:
            t = self._clock()
            r = self._run(run_key, now, t)
            if r.steps or r.grants:
                return False
            r.grants = {g.id: g for g in grants}
            r.labels.update(labels)
            for lab in labels:  # they arrive before the first step (docs/semantics.md 8.1)
                r.marks[LABEL_MARK + lab] = (0, now)
            self._touch(r, now, t, ttl_s)
            return True

    def narrow_grants(
        self, run_key: str, revoke: Sequence[str], uses: Mapping[str, int], *, now: float
    ) -> tuple[GrantRecord, ...]:
        """Revoke grants or lower their uses (never widen); the run's grants after."""
        with self._lock:
            r = self._live(run_key)
            if r is None:
                return ()
            out: dict[str, GrantRecord] = {}
            gone = frozenset(revoke)
            for gid, g in r.grants.items():
                kept = narrowed(g, gone, uses)
                if kept is not None:
                    out[gid] = kept
            r.grants = out
            return tuple(out.values())

    def mark_labels(self, run_key: str, labels: frozenset[str], *, now: float, ttl_s: float) -> None:
        with self._lock:
            t = self._clock()
            r = self._run(run_key, now, t)
            r.labels.update(labels)
            seen = (r.steps, now)
            for lab in labels:
                r.marks[LABEL_MARK + lab] = seen
            self._touch(r, now, t, ttl_s)

    def history(self, run_key: str, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            r = self._live(run_key)
            if r is None or limit <= 0:
                return []
            # copies: a caller may change what it is given
            return [_own(e) for e in r.events[-min(limit, r.cap) :]]

    def put_result(
        self, run_key: str, decision: str, doc: Mapping[str, Any], *, now: float, ttl_s: float
    ) -> None:
        got = _own(doc)
        with self._lock:
            t = self._clock()
            r = self._run(run_key, now, t)
            r.results[decision] = got
            i = r.position(decision)
            if i is not None:  # a new dict: a reader may hold the old one
                r.parsed[i] = {**r.events[i], "settlement": got}
            elif len(r.results) > results_bound(r.cap):
                # results whose event is not kept (dropped, or never came): bounded too (amortised)
                r.results = {d: doc for d, doc in r.results.items() if d in r.index or d == decision}
            self._touch(r, now, t, ttl_s)

    def history_detail(self, run_key: str, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            r = self._live(run_key)
            if r is None or limit <= 0:
                return []
            return r.parsed[-min(limit, r.cap) :]

    # ------------------------------------------------------------------ stops
    def set_stop(self, rec: StopRecord) -> None:
        check_stop(rec)
        with self._lock:
            self._stops[(rec.scope, rec.value)] = rec

    def clear_stop(self, scope: str, value: str) -> StopRecord | None:
        with self._lock:
            return self._stops.pop((scope, value), None)

    def list_stops(self) -> list[StopRecord]:
        with self._lock:
            return sorted(self._stops.values(), key=lambda s: (s.at, s.scope, s.value))

    # ------------------------------------------------------------------ idempotency
    def remember(self, key: str, payload: str, *, now: float, ttl_s: float) -> str | None:
        with self._lock:
            idem = self._idem
            got = idem.get(key)
            if got is not None and got[1] > now:
                return got[0]
            heap = self._idem_expiry
            while heap and heap[0][0] <= now:  # forget expired payloads (O(log n) each)
                exp, k = heapq.heappop(heap)
                old = idem.get(k)
                if old is not None and old[1] == exp:  # (not one remembered again since)
                    del idem[k]
            idem[key] = (payload, now + ttl_s)
            heapq.heappush(heap, (now + ttl_s, key))
            return None

    # ------------------------------------------------------------------ records
    def put_record(self, kind: str, id: str, doc: Mapping[str, Any], *, ttl_s: float | None) -> None:
        with self._lock:
            self._put(RecordOp(kind, id, doc, ttl_s))

    def _put(self, op: RecordOp) -> None:
        t = time.time()
        exp = float("inf") if op.ttl_s is None else t + op.ttl_s
        records, heap = self._records, self._record_expiry
        while heap and heap[0][0] <= t:  # forget expired records (O(log n) each)
            _, kind, rid = heapq.heappop(heap)
            got = records.get((kind, rid))
            if got is not None:
                if got[2] <= t:
                    del records[(kind, rid)]
                else:  # put again since: follow its expiry (one entry per record)
                    heapq.heappush(heap, (got[2], kind, rid))
        old = records.get((op.kind, op.id))
        version = 1 if old is None or old[2] <= t else old[0] + 1
        records[(op.kind, op.id)] = (version, _freeze(op.doc), exp)
        if old is None:
            heapq.heappush(heap, (exp, op.kind, op.id))

    def get_record(self, kind: str, id: str) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            got = self._records.get((kind, id))
            if got is None or got[2] <= time.time():
                return None
            return got[0], _thaw(got[1])

    def cas_record(self, kind: str, id: str, version: int, doc: Mapping[str, Any]) -> bool:
        with self._lock:
            got = self._records.get((kind, id))
            if got is None or got[2] <= time.time() or got[0] != version:
                return False
            self._records[(kind, id)] = (version + 1, _freeze(doc), got[2])
            return True

    def list_records(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            t = time.time()
            return [
                _thaw(d) for (k, _), (_, d, exp) in sorted(self._records.items()) if k == kind and exp > t
            ]

    def entry_counts(self) -> dict[str, int]:
        """Entries kept, per kind (tests/state/test_bounded.py; never on the decide path): what
        docs/state.md bounds. Expired ones are counted until they are reclaimed."""
        with self._lock:
            return {
                "windows": len(self._windows) + len(self._members),
                "budgets": len(self._budgets),
                "holds": len(self._holds),
                "runs": len(self._runs),
                "idempotency": len(self._idem),
                "records": len(self._records),
                "stops": len(self._stops),
            }

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None
