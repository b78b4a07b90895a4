"""Settling decisions: what is kept for ``settle``, the actual cost committed, checks after an action."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from charter.cel.provenance import PROVENANCE
from charter.engine.decision import BoundaryCheck, Failure, RuleHit
from charter.engine.evaluate import ConditionError, check_conditions
from charter.engine.history import settlement_detail
from charter.engine.observe import Observer
from charter.engine.policy import CompiledPolicy, ResultCheck
from charter.engine.provenance import CALL_RECORD, CallLookup, ProvenanceTable, call_facts, call_key
from charter.engine.stateful import MICROS, micros, set_stops, velocity_hits
from charter.engine.validate import ValidRequest, check_settlement, validate_request
from charter.engine.view import Activation, View, build_view
from charter.enums import HitKind, Mode, Outcome, Scope
from charter.errors import SettleError, UnknownDecision
from charter.state import Batch, CommitResult, StateStore, StopRecord, StoreError

__all__ = ["PENDING_LIMIT", "PENDING_TTL_S", "Pending", "PendingDecisions", "Settlement", "Settler"]

#: Unsettled decisions kept in memory per engine, and how long a shared one is kept in the store.
PENDING_LIMIT = 200_000
PENDING_TTL_S = 86400.0
#: Run labels are kept this long after they are added.
LABELS_TTL_S = 7 * 86400.0
#: no provenance table was built for the view yet
_NOT_BUILT: Any = object()


@dataclass(slots=True)
class Settlement:
    """What settling an action did: the spend committed, checks that fired, stops set."""

    decision_id: str
    committed: bool
    result: str = "success"
    checks: list[RuleHit] = field(default_factory=list)
    outcome: Outcome | None = None
    labels: tuple[str, ...] = ()
    stops: list[StopRecord] = field(default_factory=list)
    boundaries: list[BoundaryCheck] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "decision_id": self.decision_id,
            "committed": self.committed,
            "result": self.result,
            "checks": [c.to_dict() for c in self.checks],
            "outcome": self.outcome.value if self.outcome else None,
            "labels": list(self.labels),
            "stops": [s.to_dict() for s in self.stops],
            "boundaries": [b.to_dict() for b in self.boundaries],
            "failures": [f.to_dict() for f in self.failures],
        }


#: What settling a decision needs: (hold id, view); the request is ``view.req``.
Pending = tuple[str | None, View]


def _put_bounded(m: dict[str, Any], key: str, value: Any) -> None:
    """Insert into a map of unsettled decisions, dropping the oldest tenth at the limit.

    INVARIANT: bounded memory; an unsettled hold is released by its TTL in any case.
    """
    if len(m) >= PENDING_LIMIT:
        for old in list(itertools.islice(iter(m), PENDING_LIMIT // 10)):
            m.pop(old, None)
    m[key] = value


class PendingDecisions:
    """The unsettled decisions an engine remembers (in memory; shared ones also in the store).

    Two forms, one per kind of decision: an allow that held nothing and has nothing checked or
    counted after it needs only its run id (strings only, so the garbage collector never walks
    the map: a tuple per decision made p99 spikes); anything else keeps its hold and view.
    An engine built after a hot reload takes over its predecessor's (``Engine(pending=...)``).
    """

    __slots__ = ("full", "runs")

    def __init__(self) -> None:
        self.full: dict[str, Pending] = {}
        self.runs: dict[str, str | None] = {}

    def keep_run(self, did: str, run: str | None) -> None:
        """An allow whose settling can only add run labels."""
        runs = self.runs
        if len(runs) < PENDING_LIMIT:
            runs[did] = run
        else:
            _put_bounded(runs, did, run)

    def keep(self, did: str, hold: str | None, view: View) -> None:
        """A decision whose settling commits a hold or runs checks."""
        _put_bounded(self.full, did, (hold, view))


class Settler:
    """Settles the decisions of one engine: commits the actual cost (refunding or charging the
    difference), adds result labels to the run, runs the checks after an action, counts spend."""

    def __init__(
        self,
        policy: CompiledPolicy,
        store: StateStore,
        clock: Callable[[], float],
        pending: PendingDecisions,
        shared: bool,
        record: Callable[[Settlement], None],
    ):
        self.policy = policy
        self.store = store
        self.clock = clock
        self.pending = pending
        #: other replicas share the store: decisions are also kept there
        self.shared = shared
        self._record = record
        self.velocity = any(t.trigger.value == "spend-velocity" for t in policy.tripwires)
        #: a spend tripwire counts an ``amount`` from the request: settlements count it without a cost
        self.velocity_amounts = any(
            t.trigger.value == "spend-velocity" and t.amount is not None for t in policy.tripwires
        )
        #: a decision that only holds money settles from its hold alone (see by_hold)
        self.hold_settles = (
            shared and len(policy.units) == 1 and not policy.result_checks and not self.velocity
        )
        self.observer: Observer | None = None
        #: an allow that holds nothing needs only its run id kept (see PendingDecisions)
        self.lite = (
            not shared and not policy.result_checks and not self.velocity and not policy.history_detail
        )

    # ---- what a decision leaves for settling ------------------------------------------------------
    def by_hold(self, req: ValidRequest) -> bool:
        """Settling this decision needs nothing but its hold ``h:<decision id>``: the policy has
        one unit and no check or count after an action, and the request names no run and no
        idempotency key. Such a decision writes no settlement record (one row less per decision);
        another replica settles it from the hold alone (:meth:`_settle_by_hold`)."""
        return self.hold_settles and not req.run and not req.idempotency_key

    def needs_record(self, hold: str | None, req: ValidRequest) -> bool:
        """A decision the other replicas must be able to settle (its record is in the store)."""
        return (
            self.shared
            and bool(hold or req.run or self.policy.result_checks or self.velocity)
            and not (hold and self.by_hold(req))
        )

    def keep(self, did: str, hold: str | None, view: View, stored: bool = False) -> Failure | None:
        """Keep what settling this decision needs: in memory, and in a shared store for other
        replicas (``stored``: the decision's batch already wrote it). A failure to store it
        leaves the decision to be settled on this replica only."""
        req = view.req
        if hold is None and self.lite and not (req.call_id and req.run):
            self.pending.keep_run(did, req.run)
            return None
        self.pending.keep(did, hold, view)
        if not stored and self.needs_record(hold, req):
            try:
                self.store.put_record(
                    "pending",
                    did,
                    {"hold": hold, "request": req.to_dict(), "now": view.now},
                    ttl_s=PENDING_TTL_S,
                )
            except StoreError as exc:
                return Failure("state store", f"pending {did}: {exc}", "settle only on this replica")
        return None

    # ---- settling ---------------------------------------------------------------------------------
    def settle(
        self,
        decision_id: str,
        actual_cost: Mapping[str, float] | float | None = None,
        outcome: str = "success",
        labels: tuple[str, ...] | list[str] = (),
        result: Mapping[str, Any] | None = None,
    ) -> Settlement:
        """Record what an action really did (see :meth:`charter.Engine.settle`)."""
        actual, outcome, labels = check_settlement(actual_cost, outcome, labels, self.policy.units)
        if result is not None and result.__class__ is not dict and not isinstance(result, Mapping):
            raise SettleError("result must be an object (field name -> value)")
        runs = self.pending.runs
        if decision_id in runs:
            return self._settle_lite(decision_id, runs.pop(decision_id), outcome, labels)
        ctx = self.pending.full.pop(decision_id, None)
        if self.shared:
            recalled = self._recall(decision_id)  # also marks a shared record settled
            ctx = ctx or recalled
            if ctx is None:  # made without a record (perhaps under the policy before a reload)
                return self._settle_by_hold(decision_id, actual, outcome, labels)
        if ctx is None:
            raise UnknownDecision(decision_id)
        hold, view = ctx
        req = view.req
        now = self.clock()
        st = Settlement(decision_id, False, outcome, labels=tuple(labels))
        actual_map: dict[str, float] = {}
        if actual is None:
            pass
        elif isinstance(actual, Mapping):
            actual_map = dict(actual)
        else:
            units = list(req.cost) or sorted(self.policy.units)
            if units:
                actual_map = {units[0]: actual}
        if hold:
            amount = None
            # Holds carry one unit per line; the actual of the hold's unit is committed.
            unit_of_hold = next(iter(req.cost), None)
            if unit_of_hold in actual_map:
                amount = micros(actual_map[unit_of_hold])
            try:
                _committed(st, self.store.commit(hold, amount, now=now))
            except StoreError as exc:
                st.failures.append(Failure("state store", f"commit: {exc}", "hold expires by TTL"))
        spent = actual_map or dict(req.cost)
        if (spent or self.velocity_amounts) and self.velocity:
            self._count_velocity(view, spent, now, st)
        all_labels = set(labels)
        whole = set(labels)
        fields: dict[str, set[str]] = {}
        checks: tuple[ResultCheck, ...] = view.select(self.policy.index["results"])
        table: Any = _NOT_BUILT
        if checks:
            added, table = self._result_checks(checks, view, st, outcome, labels, actual_map, fields)
            whole |= added
            all_labels |= whole
            for labs in fields.values():
                all_labels |= labs
        if req.run and req.call_id:
            self._keep_call(view, req.run, req.call_id, whole, fields, now, st, table)
        if req.run and all_labels:
            try:
                self.store.mark_labels(f"run:{req.run}", frozenset(all_labels), now=now, ttl_s=LABELS_TTL_S)
            except StoreError as exc:
                st.failures.append(Failure("state store", f"labels: {exc}", "labels lost"))
        if req.run and self.policy.history_detail:
            self._keep_result(view, decision_id, result, outcome, frozenset(all_labels), now, st)
        st.labels = tuple(sorted(all_labels))
        self._record(st)
        return st

    def _keep_result(
        self,
        view: View,
        did: str,
        result: Mapping[str, Any] | None,
        outcome: str,
        labels: frozenset[str],
        now: float,
        st: Settlement,
    ) -> None:
        """Keep the settled call's outcome, labels and declared result fields in its run's
        history (engine/history.py); the values never enter the settlement or the trace."""
        doc, failures = settlement_detail(view.tool, result, outcome, labels)
        st.failures.extend(failures)
        try:
            self.store.put_result(f"run:{view.req.run}", did, doc, now=now, ttl_s=LABELS_TTL_S)
        except StoreError as exc:
            st.failures.append(Failure("state store", f"history: {exc}", "result not kept"))

    def _result_checks(
        self,
        checks: tuple[ResultCheck, ...],
        view: View,
        st: Settlement,
        outcome: str,
        labels: tuple[str, ...],
        actual: dict[str, float],
        fields: dict[str, set[str]],
    ) -> tuple[set[str], Any]:
        """Run the checks after an action; the labels they give the whole result (those given
        to fields, ``then label L on F``, are added to ``fields``), and the provenance table if
        a check built it (else ``_NOT_BUILT``)."""
        req = view.req
        probe: View | None = None  # made for the first check with conditions (most have none)
        worst: Outcome | None = None
        stops: list[tuple[Scope, Any]] = []
        added: set[str] = set()
        for chk in checks:
            if chk.conditions:
                if probe is None:
                    probe = _probe(view, outcome, actual or dict(req.cost), labels, dict(req.cost))
                if self.observer is not None:
                    self.observer.conditions_evaluated(chk, chk.conditions, probe)
                try:
                    holds = check_conditions(chk.conditions, probe)
                except ConditionError as exc:
                    st.failures.append(Failure(f"check {chk.id}", str(exc), chk.fail.value))
                    holds = chk.fail.outcome is not None
                if not holds:
                    continue
            eff = chk.outcome or Outcome.ALLOW
            source = str(chk.source) if chk.source else None
            st.checks.append(
                RuleHit(chk.id, HitKind.RESULT, eff, chk.reason, source, chk.mode is Mode.SHADOW)
            )
            if chk.mode is Mode.SHADOW:
                continue
            if chk.fields:
                for f in chk.fields:
                    fields.setdefault(f, set()).update(chk.labels)
            else:
                added |= chk.labels
            if chk.outcome is not None and (worst is None or chk.outcome.rank > worst.rank):
                worst = chk.outcome
            if chk.outcome is Outcome.HALT:
                stops.append((chk.stop_scope or Scope.AGENT, chk))
        if worst is not None and (st.outcome is None or worst.rank > st.outcome.rank):
            st.outcome = worst
        if stops:
            st.stops.extend(set_stops(self.store, stops, view, st.failures))
        if probe is None:
            return added, _NOT_BUILT
        return added, dict.get(probe._activation, PROVENANCE, _NOT_BUILT)  # type: ignore[arg-type]

    def call_lookup(self, run: str) -> CallLookup:
        """The facts of a run's earlier settled calls, by call id (for provenance sources)."""
        return store_call_lookup(self.store, run)

    def _keep_call(
        self,
        view: View,
        run: str,
        call_id: str,
        labels: set[str],
        fields: dict[str, set[str]],
        now: float,
        st: Settlement,
        table: Any = _NOT_BUILT,
    ) -> None:
        """Keep what this call's result is worth to later provenance (see call_facts); ``table``:
        the view's provenance table if the checks built it (``_NOT_BUILT``: not yet)."""
        try:
            keep_call_facts(self.store, view, run, call_id, labels, fields, now, table)
        except StoreError as exc:
            st.failures.append(
                Failure("state store", f"call {call_id[:60]}: {exc}", "its values prove nothing")
            )

    def _settle_by_hold(
        self,
        did: str,
        actual: Mapping[str, float] | float | None,
        outcome: str,
        labels: tuple[str, ...],
    ) -> Settlement:
        """Settle a decision another replica made that held money and needs nothing else. The
        actual cost is in the policy's one unit, or the one unit it names; when neither tells
        the unit, the decision is unknown here, as it was before holds settled."""
        unit = next(iter(self.policy.units)) if len(self.policy.units) == 1 else None
        amount = None
        if isinstance(actual, Mapping):
            if unit is None and len(actual) == 1:
                unit = next(iter(actual))
            if unit is None:
                raise UnknownDecision(did)
            if unit in actual:
                amount = micros(actual[unit])
        elif actual is not None:
            if unit is None:
                raise UnknownDecision(did)
            amount = micros(actual)
        st = Settlement(did, False, outcome, labels=tuple(sorted(set(labels))))
        try:
            cr = self.store.commit(f"h:{did}", amount, now=self.clock())
        except StoreError as exc:
            st.failures.append(Failure("state store", f"commit: {exc}", "hold expires by TTL"))
            self._record(st)
            return st
        if not cr.found or cr.already:
            raise UnknownDecision(did)
        _committed(st, cr)
        self._record(st)
        return st

    def _settle_lite(self, did: str, run: str | None, outcome: str, labels: tuple[str, ...]) -> Settlement:
        """Settle an allow that held nothing and has nothing after it: only the run's labels
        change. (After a hot reload the entry may meet a policy with checks: the decision was
        made under one without them, so none apply to it.)"""
        st = Settlement(did, False, outcome, labels=tuple(sorted(set(labels))))
        if run and labels:
            try:
                self.store.mark_labels(f"run:{run}", frozenset(labels), now=self.clock(), ttl_s=LABELS_TTL_S)
            except StoreError as exc:
                st.failures.append(Failure("state store", f"labels: {exc}", "labels lost"))
        self._record(st)
        return st

    def _recall(self, did: str) -> Pending | None:
        """A decision made by another replica sharing the store."""
        try:
            got = self.store.get_record("pending", did)
        except StoreError:
            return None
        if got is None or got[1].get("settled"):
            return None
        version, doc = got
        # INVARIANT: exactly one replica settles a decision (compare-and-set on the record)
        if not self.store.cas_record("pending", did, version, {**doc, "settled": True}):
            return None
        req = validate_request(doc["request"])
        view = build_view(self.policy, req, float(doc.get("now") or self.clock()))
        if req.provenance and req.run:
            view.calls = self.call_lookup(req.run)
        return (doc.get("hold"), view)

    def _count_velocity(self, view: View, spent: Mapping[str, float], now: float, st: Settlement) -> None:
        """Spend velocity counts money actually spent; a trip stops its scope for later decisions."""
        pairs = velocity_hits(self.policy, view, spent, self.observer, st.failures)
        if not pairs:
            return
        try:
            res = self.store.apply(Batch(now=now, hits=tuple(op for _, op in pairs)))
        except StoreError as exc:
            st.failures.append(Failure("state store", f"velocity: {exc}", "not counted"))
            return
        stops: list[tuple[Scope, Any]] = []
        for (tw, _), hit in zip(pairs, res.hits, strict=False):
            st.boundaries.append(
                BoundaryCheck(
                    HitKind.TRIPWIRE,
                    tw.id,
                    not hit.tripped,
                    key=hit.key,
                    used=hit.total / MICROS,
                    limit=tw.threshold,
                    unit=tw.unit,
                    detail="spend-velocity",
                )
            )
            if hit.tripped and tw.mode is Mode.ENFORCE:
                source = str(tw.source) if tw.source else None
                st.checks.append(RuleHit(tw.id, HitKind.TRIPWIRE, tw.outcome, tw.reason, source))
                if st.outcome is None or tw.outcome.rank > st.outcome.rank:
                    st.outcome = tw.outcome
                if tw.outcome is Outcome.HALT and tw.stop_scope is not None:
                    stops.append((tw.stop_scope, tw))
        if stops:
            st.stops.extend(set_stops(self.store, stops, view, st.failures))


def store_call_lookup(store: StateStore, run: str) -> CallLookup:
    """The facts of a run's earlier settled (or imported) calls in ``store``, by call id."""
    get = store.get_record

    def lookup(call_id: str) -> Any:
        got = get(CALL_RECORD, call_key(run, call_id))
        return got[1] if got is not None else None

    return lookup


def keep_call_facts(
    store: StateStore,
    view: View,
    run: str,
    call_id: str,
    labels: set[str],
    fields: dict[str, set[str]],
    now: float,
    table: ProvenanceTable | object | None = _NOT_BUILT,
) -> None:
    """Keep what a call's result is worth to later provenance (see call_facts); raises StoreError.
    ``table``: the view's provenance table when it was built already (it is built once)."""
    if table is _NOT_BUILT:
        table = view.provenance_table()
    assert table is None or isinstance(table, ProvenanceTable)
    inputs = table.inputs if table is not None else set()
    facts = call_facts(view.target, labels, fields, inputs, now)
    store.put_record(CALL_RECORD, call_key(run, call_id), facts, ttl_s=LABELS_TTL_S)


def label_checks(
    policy: CompiledPolicy, view: View, outcome: str, labels: tuple[str, ...]
) -> tuple[set[str], dict[str, set[str]]]:
    """The labels the policy's ``on result`` checks give a call's result, whole and per field
    (``then label L on F``), without their other effects: for a call that was not decided here
    (an imported one), which raises no stop or escalation. As at settlement, a check whose
    condition fails to evaluate applies unless its ``on error`` is ignore."""
    checks: tuple[ResultCheck, ...] = view.select(policy.index["results"])
    whole: set[str] = set()
    fields: dict[str, set[str]] = {}
    if not checks:
        return whole, fields
    probe = _probe(view, outcome, {}, labels, {})
    for chk in checks:
        if not chk.labels or chk.mode is Mode.SHADOW:
            continue
        try:
            holds = check_conditions(chk.conditions, probe)
        except ConditionError:
            holds = chk.fail.outcome is not None
        if not holds:
            continue
        if chk.fields:
            for f in chk.fields:
                fields.setdefault(f, set()).update(chk.labels)
        else:
            whole |= chk.labels
    return whole, fields


def _probe(
    view: View, outcome: str, cost: Mapping[str, float], labels: tuple[str, ...], estimate: dict[str, float]
) -> View:
    """The view the checks after an action read: the decision's roots (each built on first use,
    as for deciding) and ``result`` and ``estimate``. (It used to build every root up front:
    most checks read one or two, and the provenance table was then built twice per settle.)"""
    probe = view.copy()
    act = probe._activation = Activation()
    act.view = probe
    act["result"] = {
        "outcome": outcome,
        "failed": outcome not in ("success", "ok"),
        "cost": cost,
        "labels": sorted(labels),
    }
    act["estimate"] = estimate
    return probe


def _committed(st: Settlement, cr: CommitResult) -> None:
    """A hold's commit, in a settlement: committed or not, and each budget line after it."""
    st.committed = cr.ok
    for ln in cr.lines:
        st.boundaries.append(
            BoundaryCheck(
                HitKind.BUDGET,
                ln.key,
                ln.ok,
                key=ln.key,
                used=ln.used / MICROS,
                reserved=ln.reserved / MICROS,
                amount=ln.amount / MICROS,
                limit=ln.limit / MICROS,
            )
        )
