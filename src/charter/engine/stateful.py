"""The stateful step: budgets, rates, tripwires, the run's event and stop checks as one atomic store batch."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

from charter.engine.decision import BoundaryCheck, Failure, RuleHit
from charter.engine.evaluate import ConditionError, check_conditions, spend_amount
from charter.engine.history import decision_detail
from charter.engine.index import MEMO_LIMIT
from charter.engine.observe import Observer
from charter.engine.policy import Budget, CompiledPolicy, EscalationPath, EventMark, RateLimit, Tripwire
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
    HitResult,
    LineStatus,
    RecordOp,
    ReserveOp,
    StateStore,
    StopRecord,
    StoreError,
)

if TYPE_CHECKING:
    from charter.engine.step import Ruling

MICROS = 1_000_000
#: Budget holds expire after this long without a settlement (a dead client's hold is released).
HOLD_TTL_S = 900.0
#: Run history is kept this long after the run's last event.
RUN_TTL_S = 7 * 86400.0
#: Ping-pong counted over this long when the tripwire gives no window.
PINGPONG_DEFAULT_S = 86400.0


def micros(amount: float) -> int:
    """Integer micro-units of a spend (a request's cost, an ``amount``, a settlement), rounded up.

    Up, never to the nearest: rounded to the nearest, every spend under half a micro-unit counted
    0, so any number of them passed a budget (docs/security.md). The product is exact or within
    a rounding of the decimal the caller wrote, so only a product above an integer goes the slow
    way: the ceiling of the amount's shortest decimal (0.1 USD is 100,000 micro-units, not 100,001).
    """
    x = amount * MICROS
    n = round(x)
    if n >= x:
        return n
    return math.ceil(Decimal(repr(float(amount))) * MICROS)


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
    """A stable digest of (tool, arguments) for identical-call repetition.

    Numbers are digested as the values conditions compare: an integral float is its int (``1.0``
    is ``1``, ``-0.0`` is ``0``), so an agent cannot repeat one call under a tripwire by
    alternating the spellings of a number (CEL's ``1 == 1.0`` and ``-0.0 == 0.0`` hold).
    """
    blob = _fingerprint_text([view.target, _same_numbers(view.args)])
    return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()


def _same_numbers(v: Any) -> Any:
    """``v`` with every integral float as its int (a float of a validated request is finite)."""
    c = v.__class__
    if c is float:
        return int(v) if v.is_integer() and -(2.0**63) <= v < 2.0**63 else v
    if c is dict:
        return {k: _same_numbers(x) for k, x in v.items()}
    if c is list or c is tuple:
        return [_same_numbers(x) for x in v]
    return v


_NO_BATCH = Batch(now=0.0)
_NO_LABELS: frozenset[str] = frozenset()
#: a plan's list that stays empty for this selection (never appended to: see Boundaries.fallible)
_EMPTY: Any = ()


class Contribution(NamedTuple):
    """What an exceeded boundary contributes to a ruling (made once per boundary: the hit is a
    frozen value, shared by the decisions it decides)."""

    outcome: Outcome
    hit: RuleHit
    path: EscalationPath | None


class RatePlan:
    """A rate limit specialised once per engine: its counter's key prefix, window and limit and
    the texts of its check, so a decision only joins a key and reads a hit."""

    __slots__ = (
        "agent",
        "by",
        "conditional",
        "deciding",
        "detail",
        "enforce",
        "id",
        "item",
        "limit",
        "prefix",
        "scope",
        "scope_text",
        "shown_limit",
        "stop",
        "window_s",
    )

    def __init__(self, rl: RateLimit):
        self.item = rl
        self.id = rl.id
        self.prefix = f"rl:{rl.id}:"
        self.window_s = rl.window_seconds
        # INVARIANT: a shadow rate only counts; it never limits (and never blocks a reservation)
        self.limit = None if rl.mode is Mode.SHADOW else rl.limit
        self.scope = rl.scope
        self.agent = rl.scope is Scope.AGENT and rl.by_arg is None  # the commonest: no scope_values
        self.by = rl.by_arg
        self.conditional = bool(rl.conditions)
        self.enforce = rl.mode is Mode.ENFORCE
        self.scope_text = scope_text(rl)
        self.shown_limit = float(rl.limit)
        window = f"per {rl.window_seconds:g}s"
        self.detail = window if self.enforce else window + " (shadow)"
        self.deciding = Contribution(
            rl.on_exceed, RuleHit(rl.id, HitKind.RATE, rl.on_exceed, rl.reason), rl.escalation
        )
        self.stop = (
            (rl.stop_scope, rl) if rl.on_exceed is Outcome.HALT and rl.stop_scope is not None else None
        )

    def read(self, value: str, hit: HitResult, ruling: Ruling) -> None:
        """The check of this rate's hit (``value``: the scope instance counted)."""
        over = hit.limited or (not self.enforce and hit.total > self.item.limit)
        ruling.boundaries.append(
            BoundaryCheck(
                HitKind.RATE,
                self.id,
                not over,
                self.scope_text,
                value,
                "calls",
                float(hit.total),
                None,
                None,
                self.shown_limit,
                self.detail,
            )
        )
        if hit.limited and self.enforce:
            ruling.contribute(self.deciding, self.stop)


class TripwirePlan:
    """A counted tripwire (repetition, ping-pong, fan-out, denials) specialised once per engine."""

    __slots__ = ("deciding", "detail", "enforce", "item", "scale", "stop")

    def __init__(self, tw: Tripwire):
        self.item = tw
        self.enforce = tw.mode is Mode.ENFORCE
        self.scale = MICROS if tw.trigger is TriggerKind.VELOCITY else 1
        self.detail = tw.trigger.value + ("" if self.enforce else " (shadow)")
        self.deciding = Contribution(
            tw.outcome, RuleHit(tw.id, HitKind.TRIPWIRE, tw.outcome, tw.reason), tw.escalation
        )
        self.stop = (tw.stop_scope, tw) if tw.outcome is Outcome.HALT and tw.stop_scope is not None else None

    def read(self, key: str, hit: HitResult, ruling: Ruling) -> None:
        """The check of this tripwire's hit (``key``: its counter)."""
        tw = self.item
        tripped = hit.tripped or (not self.enforce and hit.total > tw.threshold * self.scale)
        ruling.boundaries.append(
            BoundaryCheck(
                HitKind.TRIPWIRE,
                tw.id,
                not tripped,
                key=key,
                used=hit.total / self.scale,
                limit=tw.threshold,
                unit=tw.unit,
                detail=self.detail,
            )
        )
        if hit.tripped and self.enforce:
            ruling.contribute(self.deciding, self.stop)


class BudgetPlan:
    """A budget specialised once per engine: its key prefix, limit and check texts."""

    __slots__ = (
        "agent",
        "by",
        "calendar",
        "conditional",
        "cost_unit",
        "deciding",
        "enforce",
        "id",
        "item",
        "limit",
        "prefix",
        "rolling_s",
        "scope",
        "scope_eq",
        "shadow",
        "stop",
        "timezone",
        "unit",
        "window",
    )

    def __init__(self, b: Budget):
        self.item = b
        self.id = b.id
        self.prefix = f"b:{b.id}:"
        self.limit = b.limit_micros
        self.unit = b.unit
        #: the cost counted (None: the budget's ``amount`` expression is)
        self.cost_unit = b.unit if b.amount is None else None
        self.calendar = b.calendar
        self.timezone = b.timezone
        self.rolling_s = b.rolling_seconds
        self.scope = b.scope
        self.agent = b.scope is Scope.AGENT and b.by_arg is None
        self.by = b.by_arg
        self.conditional = bool(b.conditions)
        self.shadow = b.mode is Mode.SHADOW
        self.enforce = b.mode is Mode.ENFORCE
        self.scope_eq = scope_text(b) + "="
        self.deciding = Contribution(
            b.on_exceed, RuleHit(b.id, HitKind.BUDGET, b.on_exceed, b.reason), b.escalation
        )
        self.stop = (b.stop_scope, b) if b.on_exceed is Outcome.HALT and b.stop_scope is not None else None
        #: a calendar budget's current window (start, end, id), kept here: one compare per
        #: decision (one attribute, so a reader in another thread never sees half of a new one)
        self.window: tuple[float, float, str] = (0.0, 0.0, "")

    def window_at(self, now: float) -> tuple[float, float, str]:
        """The calendar window containing ``now`` (the same one calendar_window gives)."""
        assert self.calendar is not None
        wid, start, end = _calendar_window(self.calendar, self.timezone, now)
        return start, end, wid

    def read(self, value: str, st: LineStatus, ruling: Ruling) -> None:
        """The check of one of this budget's lines (``value``: the scope instance)."""
        ruling.boundaries.append(
            BoundaryCheck(
                HitKind.BUDGET,
                self.id,
                st.ok,
                self.scope_eq + value,
                st.key,
                self.unit,
                st.used / MICROS,
                st.reserved / MICROS,
                st.amount / MICROS,
                st.limit / MICROS,
            )
        )
        if not st.ok and self.enforce:
            ruling.contribute(self.deciding, self.stop)


class Boundaries:
    """The counted tripwires, rates and budgets covering one request shape, specialised.

    ``fallible``: some boundary has conditions, an amount expression or a ``by args.A`` scope
    (only then can planning record failures or errors, so only then does a plan get lists for them).
    """

    __slots__ = ("budgets", "fallible", "rates", "stop_keys", "tripwires")

    def __init__(
        self,
        tripwires: tuple[TripwirePlan, ...],
        rates: tuple[RatePlan, ...],
        budgets: tuple[BudgetPlan, ...],
    ):
        self.tripwires = tripwires
        self.rates = rates
        self.budgets = budgets
        #: the stop keys of this shape's requests without a chain, run or tenant (set on first use)
        self.stop_keys: tuple[tuple[str, str], ...] | None = None
        self.fallible = (
            any(t.item.conditions for t in tripwires)
            or any(r.conditional or r.by is not None for r in rates)
            or any(b.conditional or b.cost_unit is None or b.by is not None for b in budgets)
        )


class Specialised:
    """Every stateful boundary of a policy specialised once (engine build), and the boundaries
    covering each request shape, selected once per shape (a bounded memo, like the index's)."""

    def __init__(self, policy: CompiledPolicy):
        idx = policy.index
        self._rates_idx = idx["rates"] if policy.rates else None
        self._budgets_idx = idx["budgets"] if policy.budgets else None
        self._tripwires_idx = idx["tripwires"] if policy.tripwires else None
        self._plans: dict[int, RatePlan | TripwirePlan | BudgetPlan] = {}
        for rl in policy.rates:
            self._plans[id(rl)] = RatePlan(rl)
        for b in policy.budgets:
            self._plans[id(b)] = BudgetPlan(b)
        for tw in policy.tripwires:
            if tw.trigger not in _NOT_COUNTED:
                self._plans[id(tw)] = TripwirePlan(tw)
        self._memo: dict[tuple[Any, ...], Boundaries] = {}

    def select(self, view: View) -> Boundaries:
        """The boundaries covering this request, in the index's order."""
        key = view.selection_key()
        got = self._memo.get(key)
        if got is not None:
            return got
        plans: Any = self._plans
        got = Boundaries(
            tuple(plans[id(t)] for t in view.select(self._tripwires_idx) if id(t) in plans)
            if self._tripwires_idx is not None
            else (),
            tuple(plans[id(r)] for r in view.select(self._rates_idx)) if self._rates_idx is not None else (),
            tuple(plans[id(b)] for b in view.select(self._budgets_idx))
            if self._budgets_idx is not None
            else (),
        )
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = got
        return got


class BatchPlan:
    """The batch for one decision and how to read its result back (a plain slotted class: one
    is built per decision)."""

    __slots__ = ("batch", "errors", "failures", "hits", "lines", "shadow_budgets")

    def __init__(self, fallible: bool) -> None:
        self.batch: Batch = _NO_BATCH  # set once planned
        self.hits: list[tuple[RatePlan | TripwirePlan, str]] = []  # (its plan, scope value or key)
        self.lines: list[tuple[BudgetPlan, str]] = []  # (its plan, scope value)
        # only a fallible selection records failures and errors (others share an empty tuple)
        self.failures: list[Failure] = [] if fallible else _EMPTY
        #: boundaries whose condition failed: (item, outcome its failure mode contributes, message)
        self.errors: list[tuple[Any, Outcome, str]] = [] if fallible else _EMPTY
        self.shadow_budgets: list[Budget] = _EMPTY


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
    sel: Boundaries,
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
    denied: bool = False,
) -> BatchPlan:
    """Build the atomic batch: stop keys, tripwire hits, and (when allowed so far) rates, budget, event.

    ``sel``: the boundaries covering this request (``Specialised.select``). With
    ``pending_ttl_s``, an allowed decision's settlement record (``pending``, for the other
    replicas sharing the store) rides in the same batch when it holds money or when
    ``pending_always`` (run, result checks, spend velocity); the store writes it iff the batch
    goes through, which is exactly when the decision stays allowed. ``by_hold``: settling needs
    only the hold (``Settling._by_hold``), so a decision that holds money writes no record.
    ``denied``: the outcome so far is deny (what a ``denied more than`` tripwire counts).
    """
    req = view.req
    now = view.now
    plan = BatchPlan(sel.fallible)
    hits: list[HitOp] = []
    reads = plan.hits
    for tp in sel.tripwires:
        tw = tp.item
        if tw.conditions and not applies(tw, view, plan.errors, plan.failures, observer):
            continue
        op = _tripwire_hit(tw, view, denied)
        if op is not None and tw.mode is Mode.SHADOW:
            # INVARIANT: a shadow tripwire only counts; the store must not see it trip.
            op = HitOp(op.key, op.window_s, op.amount, member=op.member)
        if op is not None:
            hits.append(op)
            reads.append((tp, op.key))
    reserve = None
    event = None
    if allow_spend:
        for rp in sel.rates:
            if rp.conditional and not applies(rp.item, view, plan.errors, plan.failures, observer):
                continue
            if rp.agent:
                value = view.actor_id
                hits.append(HitOp(rp.prefix + value, rp.window_s, 1, rp.limit))
                reads.append((rp, value))
            else:
                values: Sequence[str] = scope_values(rp.scope, view)
                if rp.by is not None:
                    part = _arg_part(rp.item, rp.by, view, plan)
                    if part is None:
                        continue
                    values = [f"{v}|{part}" for v in values]
                for value in values:
                    hits.append(HitOp(rp.prefix + value, rp.window_s, 1, rp.limit))
                    reads.append((rp, value))
        lines: list[BudgetLine] = []
        for bp in sel.budgets:
            unit = bp.cost_unit
            amount = req.cost.get(unit) if unit is not None else 0.0
            if amount is None or (
                bp.conditional and not applies(bp.item, view, plan.errors, plan.failures, observer)
            ):
                continue
            if unit is None:
                amount = _budget_amount(bp.item, view, plan)
                if amount is None:
                    continue
            values = (view.actor_id,) if bp.agent else scope_values(bp.scope, view)
            if bp.by is not None:
                part = _arg_part(bp.item, bp.by, view, plan)
                if part is None:
                    continue
                values = [f"{v}|{part}" for v in values]
            if bp.shadow:
                if plan.shadow_budgets is _EMPTY:
                    plan.shadow_budgets = []
                plan.shadow_budgets.append(bp.item)
                continue
            spend = micros(amount)
            if bp.calendar is not None:
                start, end, wid = bp.window
                if not start <= now < end:
                    start, end, wid = bp.window = bp.window_at(now)
            for value in values:
                if bp.calendar is not None:
                    lines.append(BudgetLine(f"{bp.prefix}{value}:{wid}", bp.limit, spend, None, end))
                else:
                    lines.append(BudgetLine(bp.prefix + value, bp.limit, spend, bp.rolling_s, None))
                plan.lines.append((bp, value))
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
    # want_run=False: the rules read the run's state before (Engine._decide): no second snapshot
    plan.batch = Batch(
        now, keys, tuple(hits), reserve, event, req.idempotency_key, record=record, want_run=False
    )
    return plan


def _budget_amount(b: Budget, view: View, plan: BatchPlan) -> float | None:
    """A budget's ``amount`` for this request; None (and a failure with its ``on error``) when it
    cannot be counted: nothing is reserved, and the failure mode decides (deny by default)."""
    assert b.amount is not None
    try:
        return spend_amount(b.amount, view)
    except ConditionError as exc:
        _failed(b, exc, plan)
        return None


def _arg_part(item: Budget | RateLimit, name: str, view: View, plan: BatchPlan) -> str | None:
    """The argument's key part of a ``scope S by args.NAME`` boundary; None (and a failure with its
    ``on error``) when the argument cannot key a counter: nothing is counted or reserved for it."""
    try:
        return arg_key(view.args, name)
    except ConditionError as exc:
        _failed(item, exc, plan)
        return None


def _failed(item: Budget | RateLimit, exc: ConditionError, plan: BatchPlan) -> None:
    """Record a boundary that cannot be counted; its ``on error`` decides (deny by default)."""
    where = f"{item.kind} {item.id}"
    if item.mode is not Mode.ENFORCE:
        plan.failures.append(Failure(where, str(exc), "none (shadow)"))
        return
    took = item.fail.outcome
    plan.failures.append(Failure(where, str(exc), took.value if took else "ignore (fail-open)"))
    if took is not None:
        plan.errors.append((item, took, str(exc)))


def scope_text(item: Budget | RateLimit) -> str:
    """What a budget or rate counts per, as written: ``agent``, ``agent by args.vendor``."""
    return item.scope.value if item.by_arg is None else f"{item.scope.value} by args.{item.by_arg}"


_SHOWN = {type(None): "null", float: "a double", list: "a list", dict: "a map"}


def arg_key(args: Mapping[str, Any], name: str) -> str:
    """The key part for the value of ``args[name]`` (``scope S by args.NAME``, docs/semantics.md 7).

    A digest of a typed encoding: bounded whatever the value's size (a store key stays short),
    and "1", 1 and true are three different keys. Strings are exact (no case or space folding).
    Raises ConditionError when the argument is missing or not a string, int or bool (a null, a
    double, even an integral one, a list or a map): never one shared counter for them.
    """
    if name not in args:
        raise ConditionError(f"argument '{name}' is missing, and this boundary is counted per its value")
    x = args[name]
    if isinstance(x, bool):
        enc = b"b:1" if x else b"b:0"
    elif isinstance(x, int):
        try:
            enc = b"i:" + str(x).encode()
        except ValueError:  # an int too long to print (Python's digit limit): not an identifier
            raise ConditionError(f"argument '{name}' is an integer too large to count per") from None
    elif isinstance(x, str):
        # surrogatepass: a lone surrogate (valid JSON) keys its own counter rather than failing
        enc = b"s:" + x.encode("utf-8", "surrogatepass")
    else:
        shown = _SHOWN.get(type(x)) or next(
            (t for k, t in _SHOWN.items() if isinstance(x, k)), type(x).__name__
        )
        raise ConditionError(
            f"argument '{name}' is {shown}: a boundary is counted per a string, int or bool argument"
        )
    return hashlib.blake2b(enc, digest_size=16, person=b"charter.scope").hexdigest()


def _tripwire_hit(tw: Tripwire, view: View, denied: bool) -> HitOp | None:
    window = tw.window_seconds
    threshold = int(tw.threshold)
    run = view.req.run or "-"
    if tw.trigger is TriggerKind.DENIED:
        # per agent, whatever the action: an agent probing the boundary varies what it asks
        if not denied:
            return None
        return HitOp(f"tw:{tw.id}:{view.actor_id}", window or 60.0, 1, trip_above=threshold)
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
        trip = round(tw.threshold * MICROS) if tw.mode is Mode.ENFORCE else None  # a policy's, exact
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


def read_result(plan: BatchPlan, res: BatchResult, ruling: Ruling) -> None:
    """Interpret a batch result into the ruling: a check per hit, shadow budget and budget line
    (in the batch's order), and the contribution of each tripped tripwire, limited rate and
    budget that would overspend (the stop its halt sets)."""
    for (bp, value), hit in zip(plan.hits, res.hits, strict=False):
        bp.read(value, hit, ruling)
    for b in plan.shadow_budgets:
        ruling.boundaries.append(
            BoundaryCheck(HitKind.BUDGET, b.id, True, unit=b.unit, detail="shadow: not reserved")
        )
    if res.reserve is not None:
        for (lp, value), st in zip(plan.lines, res.reserve.lines, strict=False):
            lp.read(value, st, ruling)


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
