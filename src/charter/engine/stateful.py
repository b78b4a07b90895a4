"""The stateful step: budgets, rates, tripwires, the run's event and stop checks as one atomic store batch."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from charter.engine.decision import BoundaryCheck, Failure
from charter.engine.evaluate import ConditionError, check_conditions, spend_amount
from charter.engine.history import decision_detail
from charter.engine.observe import Observer
from charter.engine.policy import Budget, CompiledPolicy, EventMark, RateLimit, Tripwire
from charter.engine.runlabels import entered_labels, label_marks
from charter.engine.view import View, scope_values
from charter.enums import ActionKind, Calendar, HitKind, Mode, Outcome, RuleKind, Scope, TriggerKind
from charter.jsonenc import compact_encoder
from charter.state import (
    Batch,
    BatchResult,
    BudgetLine,
    EventOp,
    HitOp,
    RecordOp,
    ReserveOp,
    StateStore,
    StopRecord,
    StoreError,
)

MICROS = 1_000_000
#: Budget holds expire after this long without a settlement (a dead client's hold is released).
HOLD_TTL_S = 900.0
#: Run history is kept this long after the run's last event.
RUN_TTL_S = 7 * 86400.0
#: Ping-pong counted over this long when the tripwire gives no window.
PINGPONG_DEFAULT_S = 86400.0


def micros(amount: float) -> int:
    """Integer micro-units of an amount."""
    return round(amount * MICROS)


#: the last window computed per (calendar, zone): (start, end, id); windows change rarely
_WINDOWS: dict[tuple[Calendar, str], tuple[float, float, str]] = {}


def calendar_window(cal: Calendar, tz: str, now: float) -> tuple[str, float]:
    """The id of the calendar window containing ``now`` in ``tz``, and when it ends (epoch s)."""
    hit = _WINDOWS.get((cal, tz))
    if hit is not None and hit[0] <= now < hit[1]:
        return hit[2], hit[1]
    wid, start, end = _calendar_window(cal, tz, now)
    _WINDOWS[(cal, tz)] = (start, end, wid)
    return wid, end


def _calendar_window(cal: Calendar, tz: str, now: float) -> tuple[str, float, float]:
    zone = ZoneInfo(tz)
    t = datetime.fromtimestamp(now, zone)
    if cal is Calendar.HOUR:
        start = t.replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(hours=1)
        wid = start.strftime("%Y-%m-%dT%H")
    elif cal is Calendar.DAY:
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=1, hours=2)).replace(hour=0)
        wid = start.strftime("%Y-%m-%d")
    elif cal is Calendar.WEEK:
        start = (t - timedelta(days=t.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=7, hours=2)).replace(hour=0)
        iso = start.isocalendar()
        wid = f"{iso[0]}-W{iso[1]:02d}"
    else:
        start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = (start + timedelta(days=32)).replace(day=1)
        end = nxt
        wid = start.strftime("%Y-%m")
    return wid, start.timestamp(), end.timestamp()


#: exactly ``json.dumps(o, sort_keys=True, default=str, separators=(",", ":"))`` (the digests are
#: store keys, so they never change), with the C encoder built once; the arguments are a validated
#: tree (bounded nesting, no cycles), so no reference markers are needed
_fingerprint_text = compact_encoder(sort_keys=True, default=str, ensure_ascii=True)


def call_fingerprint(view: View) -> str:
    """A stable digest of (tool, arguments) for identical-call repetition."""
    blob = _fingerprint_text([view.target, view.args])
    return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()


_NO_BATCH = Batch(now=0.0)
_NO_LABELS: frozenset[str] = frozenset()


class BatchPlan:
    """The batch for one decision and how to read its result back (a plain slotted class: one
    is built per decision)."""

    __slots__ = ("batch", "errors", "failures", "hits", "lines", "shadow_budgets")

    def __init__(self) -> None:
        self.batch: Batch = _NO_BATCH  # set once planned
        self.hits: list[tuple[Any, str]] = []  # (rate|tripwire, scope value)
        self.lines: list[tuple[Budget, str]] = []
        self.failures: list[Failure] = []
        #: boundaries whose condition failed: (item, outcome its failure mode contributes, message)
        self.errors: list[tuple[Any, Outcome, str]] = []
        self.shadow_budgets: list[Budget] = []


def applies(
    item: Any,
    view: View,
    errors: list[tuple[Any, Outcome, str]],
    failures: list[Failure],
    observer: Observer | None = None,
) -> bool:
    """Whether a boundary's conditions hold; a failure contributes its failure mode (deny by default)."""
    if not item.conditions:
        return True
    if observer is not None:
        observer.conditions_evaluated(item, item.conditions, view)
    try:
        return check_conditions(item.conditions, view)
    except ConditionError as exc:
        where = f"{item.kind} {item.id}"
        if item.mode is not Mode.ENFORCE:  # a shadow boundary's failure is recorded, never enforced
            failures.append(Failure(where, str(exc), "none (shadow)"))
            return False
        fail = getattr(item, "fail", None)
        took = fail.outcome if fail is not None else Outcome.DENY
        failures.append(Failure(where, str(exc), took.value if took else "ignore (fail-open)"))
        if took is not None:
            errors.append((item, took, str(exc)))
        return False


def plan_batch(
    policy: CompiledPolicy,
    view: View,
    allow_spend: bool,
    keys: tuple[tuple[str, str], ...],
    decision_id: str,
    pending_ttl_s: float | None = None,
    pending_always: bool = False,
    by_hold: bool = False,
    observer: Observer | None = None,
    request_digest: str = "",
) -> BatchPlan:
    """Build the atomic batch: stop keys, tripwire hits, and (when allowed so far) rates, budget, event.

    With ``pending_ttl_s``, an allowed decision's settlement record (``pending``, for the other
    replicas sharing the store) rides in the same batch when it holds money or when
    ``pending_always`` (run, result checks, spend velocity); the store writes it iff the batch
    goes through, which is exactly when the decision stays allowed. ``by_hold``: settling needs
    only the hold (``Settling._by_hold``), so a decision that holds money writes no record.
    """
    req = view.req
    idx = policy.index
    now = view.now
    plan = BatchPlan()
    hits: list[HitOp] = []
    tw: Tripwire
    for tw in view.select(idx["tripwires"]) if policy.tripwires else ():
        if tw.trigger in _NOT_COUNTED or not applies(tw, view, plan.errors, plan.failures, observer):
            continue
        op = _tripwire_hit(tw, view)
        if op is not None and tw.mode is Mode.SHADOW:
            # INVARIANT: a shadow tripwire only counts; the store must not see it trip.
            op = HitOp(op.key, op.window_s, op.amount, member=op.member)
        if op is not None:
            hits.append(op)
            plan.hits.append((tw, op.key))
    reserve = None
    event = None
    if allow_spend:
        rl: RateLimit
        for rl in view.select(idx["rates"]) if policy.rates else ():
            if rl.conditions and not applies(rl, view, plan.errors, plan.failures, observer):
                continue
            for value in scope_values(rl.scope, view):
                # INVARIANT: a shadow rate only counts; it never limits (and never blocks a reservation)
                limit = None if rl.mode is Mode.SHADOW else rl.limit
                hits.append(HitOp(f"rl:{rl.id}:{value}", rl.window_seconds, 1, limit))
                plan.hits.append((rl, value))
        lines: list[BudgetLine] = []
        b: Budget
        for b in view.select(idx["budgets"]) if policy.budgets else ():
            amount = req.cost.get(b.unit) if b.amount is None else 0.0
            if amount is None or (
                b.conditions and not applies(b, view, plan.errors, plan.failures, observer)
            ):
                continue
            if b.amount is not None:
                amount = _budget_amount(b, view, plan)
                if amount is None:
                    continue
            if b.mode is Mode.SHADOW:
                plan.shadow_budgets.append(b)
                continue
            for value in scope_values(b.scope, view):
                if b.calendar is not None:
                    wid, end = calendar_window(b.calendar, b.timezone, now)
                    lines.append(
                        BudgetLine(f"b:{b.id}:{value}:{wid}", b.limit_micros, micros(amount), None, end)
                    )
                else:
                    lines.append(
                        BudgetLine(
                            f"b:{b.id}:{value}", b.limit_micros, micros(amount), b.rolling_seconds, None
                        )
                    )
                plan.lines.append((b, value))
        if lines:
            # INVARIANT: a retried request (same idempotency key, same request) maps to the same hold,
            # so even two concurrent retries are charged once; another request under the key (which
            # is refused once the first is remembered) never rides on the first one's hold.
            key = req.idempotency_key
            hold = f"h:k:{key}:{request_digest[:32]}" if key else f"h:{decision_id}"
            reserve = ReserveOp(hold, tuple(lines), HOLD_TTL_S)
        run = req.run
        # every policy keeps run labels when a request names a run (docs/semantics.md 8.1)
        entered = entered_labels(view) if run else _NO_LABELS
        if run and (policy.marks or policy.uses_run_state or entered):
            marks = frozenset(m.id for m in policy.marks if mark_matches(m, view))
            if entered:
                marks |= label_marks(entered)
            ev_doc: dict[str, Any] = {
                "decision": decision_id,
                "agent": view.actor_id,
                "kind": view.kind.value,
                "target": view.target,
                "at": now,
            }
            if policy.history_detail:
                ev_doc.update(decision_detail(view, entered))
            event = EventOp(f"run:{run}", ev_doc, entered, marks, RUN_TTL_S)
    record = None
    if (
        pending_ttl_s is not None
        and allow_spend
        and (reserve is not None or req.run or pending_always)
        and not (by_hold and reserve is not None)
    ):
        doc = {"hold": reserve.hold_id if reserve else None, "request": req.to_dict(), "now": now}
        record = RecordOp("pending", decision_id, doc, pending_ttl_s)
    plan.batch = Batch(
        now=now,
        stop_keys=keys,
        hits=tuple(hits),
        reserve=reserve,
        event=event,
        idempotency_key=req.idempotency_key,
        record=record,
        want_run=False,  # the rules read the run's state before (Engine._decide): no second snapshot
    )
    return plan


def _budget_amount(b: Budget, view: View, plan: BatchPlan) -> float | None:
    """A budget's ``amount`` for this request; None (and a failure with its ``on error``) when it
    cannot be counted: nothing is reserved, and the failure mode decides (deny by default)."""
    assert b.amount is not None
    try:
        return spend_amount(b.amount, view)
    except ConditionError as exc:
        where = f"{b.kind} {b.id}"
        if b.mode is not Mode.ENFORCE:
            plan.failures.append(Failure(where, str(exc), "none (shadow)"))
            return None
        took = b.fail.outcome
        plan.failures.append(Failure(where, str(exc), took.value if took else "ignore (fail-open)"))
        if took is not None:
            plan.errors.append((b, took, str(exc)))
        return None


def _tripwire_hit(tw: Tripwire, view: View) -> HitOp | None:
    window = tw.window_seconds
    threshold = int(tw.threshold)
    run = view.req.run or "-"
    if tw.trigger is TriggerKind.REPEAT:
        return HitOp(
            f"tw:{tw.id}:{view.actor_id}:{call_fingerprint(view)}", window or 60.0, 1, trip_above=threshold
        )
    if view.kind is not ActionKind.DELEGATE:
        return None
    if tw.trigger is TriggerKind.PINGPONG:
        pair = ":".join(sorted((view.actor_id, view.target)))
        return HitOp(f"tw:{tw.id}:{run}:{pair}", window or PINGPONG_DEFAULT_S, 1, trip_above=threshold)
    if tw.trigger is TriggerKind.FANOUT:
        return HitOp(
            f"tw:{tw.id}:{view.actor_id}", window or 300.0, 1, trip_above=threshold, member=view.target
        )
    return None


def mark_matches(mark: EventMark, view: View) -> bool:
    """Whether this action sets a sequence mark."""
    if mark.labels:
        return not mark.labels.isdisjoint(view.labels)
    if mark.kind is not None and mark.kind is not view.kind:
        return False
    t = mark.target
    return t.any or view.target in t.names or (bool(t.roles) and not t.roles.isdisjoint(view.target_roles))


#: tripwires not counted in the decision batch: depth needs no state; velocity counts settled spend
_NOT_COUNTED = (TriggerKind.DEPTH, TriggerKind.VELOCITY)


def depth_trips(
    policy: CompiledPolicy,
    view: View,
    errors: list[tuple[Any, Outcome, str]],
    failures: list[Failure],
    observer: Observer | None = None,
) -> list[Tripwire]:
    """Delegation-depth tripwires this request trips (they need no state)."""
    depth = len(view.chain)
    out = []
    for tw in view.select(policy.index["tripwires"]):
        if (
            tw.trigger is TriggerKind.DEPTH
            and depth > tw.threshold
            and applies(tw, view, errors, failures, observer)
        ):
            out.append(tw)
    return out


def velocity_hits(
    policy: CompiledPolicy,
    view: View,
    spent: Mapping[str, float],
    observer: Observer | None = None,
    failures: list[Failure] | None = None,
) -> list[tuple[Tripwire, HitOp]]:
    """Spend-velocity counters for money actually spent (counted when an action is settled).

    A tripwire with ``amount`` counts that expression over the settled request instead of the
    cost; when it cannot be evaluated (an error, a negative or non-finite number) nothing is
    counted and the failure is recorded in ``failures`` (the settlement's).
    """
    out = []
    for tw in view.select(policy.index["tripwires"]):
        if tw.trigger is not TriggerKind.VELOCITY:
            continue
        amount: float | None = spent.get(tw.unit or "") if tw.amount is None else 1.0
        if not amount or not applies(tw, view, [], [], observer):
            continue
        if tw.amount is not None:
            try:
                amount = spend_amount(tw.amount, view)
            except ConditionError as exc:
                if failures is not None:
                    failures.append(Failure(f"{tw.kind} {tw.id}", str(exc), "not counted"))
                continue
            if not amount:
                continue
        trip = micros(tw.threshold) if tw.mode is Mode.ENFORCE else None
        out.append(
            (
                tw,
                HitOp(
                    f"tw:{tw.id}:{view.req.workflow or '-'}",
                    tw.window_seconds or 60.0,
                    micros(amount),
                    trip_above=trip,
                ),
            )
        )
    return out


class StateOutcome:
    """What the store said, as outcomes and boundary checks (a plain slotted class: one is
    built per stateful decision)."""

    __slots__ = ("checks", "deciding", "outcome", "stops_to_set", "tripped")

    def __init__(self) -> None:
        self.outcome = Outcome.ALLOW
        self.checks: list[BoundaryCheck] = []
        self.tripped: list[Tripwire] = []
        #: (kind, id, effect, reason, escalation path or None)
        self.deciding: list[tuple[HitKind, str, Outcome, str, Any]] = []
        self.stops_to_set: list[tuple[Scope, Tripwire | Budget | RateLimit]] = []


#: per boundary: (the boundary, its scope name, a rate's "per <window>s") -- the texts a check
#: shows, made once per boundary instead of once per decision; keyed by id() and checked by
#: identity, so a boundary of a replaced policy never lends its text to a new one
_TEXTS: dict[int, tuple[Any, str, str]] = {}


def _texts(item: RateLimit | Budget) -> tuple[Any, str, str]:
    got = _TEXTS.get(id(item))
    if got is None or got[0] is not item:
        if len(_TEXTS) > 10_000:  # policies reloaded many times: start afresh
            _TEXTS.clear()
        window = f"per {item.window_seconds:g}s" if isinstance(item, RateLimit) else ""
        got = _TEXTS[id(item)] = (item, item.scope.value, window)
    return got


def read_result(plan: BatchPlan, res: BatchResult) -> StateOutcome:
    """Interpret a batch result: tripped tripwires, limited rates, budgets that would overspend."""
    out = StateOutcome()
    checks = out.checks
    worst = Outcome.ALLOW
    for (item, key), hit in zip(plan.hits, res.hits, strict=False):
        if isinstance(item, Tripwire):
            enforce = item.mode is Mode.ENFORCE
            scale = MICROS if item.trigger is TriggerKind.VELOCITY else 1
            tripped = hit.tripped or (not enforce and hit.total > item.threshold * scale)
            out.checks.append(
                BoundaryCheck(
                    HitKind.TRIPWIRE,
                    item.id,
                    not tripped,
                    key=key,
                    used=hit.total / (MICROS if item.trigger is TriggerKind.VELOCITY else 1),
                    limit=item.threshold,
                    unit=item.unit,
                    detail=item.trigger.value + ("" if enforce else " (shadow)"),
                )
            )
            if hit.tripped and enforce:
                if item.outcome.rank > worst.rank:
                    worst = item.outcome
                out.tripped.append(item)
                out.deciding.append((HitKind.TRIPWIRE, item.id, item.outcome, item.reason, item.escalation))
                if item.outcome is Outcome.HALT and item.stop_scope is not None:
                    out.stops_to_set.append((item.stop_scope, item))
        else:
            rl: RateLimit = item
            enforce = rl.mode is Mode.ENFORCE
            over = hit.limited or (not enforce and hit.total > rl.limit)
            _, scope, window = _texts(rl)
            checks.append(
                BoundaryCheck(
                    HitKind.RATE,
                    rl.id,
                    not over,
                    scope,
                    key,
                    "calls",
                    float(hit.total),
                    None,
                    None,
                    float(rl.limit),
                    window if enforce else window + " (shadow)",
                )
            )
            if hit.limited and enforce:
                if rl.on_exceed.rank > worst.rank:
                    worst = rl.on_exceed
                out.deciding.append((HitKind.RATE, rl.id, rl.on_exceed, rl.reason, rl.escalation))
                if rl.on_exceed is Outcome.HALT and rl.stop_scope is not None:
                    out.stops_to_set.append((rl.stop_scope, rl))
    for b in plan.shadow_budgets:
        out.checks.append(
            BoundaryCheck(HitKind.BUDGET, b.id, True, unit=b.unit, detail="shadow: not reserved")
        )
    if res.reserve is not None:
        for (b, value), st in zip(plan.lines, res.reserve.lines, strict=False):
            enforce = b.mode is Mode.ENFORCE
            checks.append(
                BoundaryCheck(
                    HitKind.BUDGET,
                    b.id,
                    st.ok,
                    f"{_texts(b)[1]}={value}",
                    st.key,
                    b.unit,
                    st.used / MICROS,
                    st.reserved / MICROS,
                    st.amount / MICROS,
                    st.limit / MICROS,
                )
            )
            if not st.ok and enforce:
                if b.on_exceed.rank > worst.rank:
                    worst = b.on_exceed
                out.deciding.append((HitKind.BUDGET, b.id, b.on_exceed, b.reason, b.escalation))
                if b.on_exceed is Outcome.HALT and b.stop_scope is not None:
                    out.stops_to_set.append((b.stop_scope, b))
    out.outcome = worst
    return out


def set_stops(
    store: StateStore, items: list[tuple[Scope, Any]], view: View, failures: list[Failure]
) -> list[StopRecord]:
    """Set the stops a halt calls for (a rule, boundary or check that halts, with its scope).

    A stop that cannot be stored is a failure; the decision halts anyway (not persisted).
    """
    out = []
    for scope, item in items:
        values = ["*"] if scope in (Scope.GLOBAL, Scope.ORG) else scope_values(scope, view)
        for value in values:
            rec = StopRecord(
                "global" if scope is Scope.ORG else scope.value,
                value,
                item.reason or f"tripped {item.id}",
                f"policy:{item.id}",
                view.now,
                str(item.kind.value if isinstance(item.kind, RuleKind) else item.kind),
            )
            try:
                store.set_stop(rec)
                out.append(rec)
            except StoreError as exc:
                failures.append(Failure(f"stop {scope.value}={value}", str(exc), "halt (not persisted)"))
    return out


def release(store: StateStore, hold_id: str, now: float, failures: list[Failure]) -> None:
    """Give a reservation back (a stricter outcome arrived after it); its TTL frees it otherwise."""
    try:
        store.release(hold_id, now=now)
    except StoreError as exc:
        failures.append(Failure("state store", f"release {hold_id}: {exc}", "hold expires by TTL"))
