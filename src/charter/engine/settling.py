"""Settling decisions: what an engine keeps for ``settle``, commits, checks after an action, stops."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from charter.engine.decision import BoundaryCheck, Failure, RuleHit
from charter.engine.evaluate import EvalError, View, check_conditions
from charter.engine.policy import CompiledPolicy
from charter.engine.prepare import build_view, scope_values
from charter.engine.req import Req, parse_request
from charter.engine.stateful import MICROS, micros, velocity_hits
from charter.enums import Mode, Outcome, Scope
from charter.state import Batch, CommitResult, StateStore, StopRecord, StoreError

__all__ = ["PENDING_LIMIT", "PENDING_TTL_S", "Pending", "Settlement", "Settling", "put_bounded"]


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


#: What settling a decision needs: (hold id, run id, view, request).
Pending = tuple[str | None, str | None, View, Req]

#: Unsettled decisions kept in memory per engine, and how long a shared one is kept in the store.
PENDING_LIMIT = 200_000
PENDING_TTL_S = 86400.0


def put_bounded(m: dict[str, Any], key: str, value: Any) -> None:
    """Insert into a map of unsettled decisions, dropping the oldest tenth at the limit.

    INVARIANT: bounded memory; an unsettled hold is released by its TTL in any case.
    """
    if len(m) >= PENDING_LIMIT:
        for old in list(itertools.islice(iter(m), PENDING_LIMIT // 10)):
            m.pop(old, None)
    m[key] = value


class Settling:
    """The settling half of :class:`charter.Engine` (a mixin: the engine owns the state it reads)."""

    policy: CompiledPolicy
    store: StateStore
    trace: Any
    clock: Callable[[], float]
    _pending: dict[str, Pending]
    _settle_runs: dict[str, str | None]
    _shared_pending: bool
    _velocity: bool
    _hold_settles: bool

    def _release(self, hold_id: str, now: float, failures: list[Failure]) -> None:
        try:
            self.store.release(hold_id, now=now)
        except StoreError as exc:
            failures.append(Failure("state store", f"release {hold_id}: {exc}", "hold expires by TTL"))

    def _set_stops(
        self, items: list[tuple[Scope, Any]], req: Req, view: View, failures: list[Failure]
    ) -> list[dict[str, Any]]:
        out = []
        for scope, item in items:
            values = ["*"] if scope in (Scope.GLOBAL, Scope.ORG) else scope_values(scope, req, view)
            for value in values:
                rec = StopRecord(
                    "global" if scope is Scope.ORG else scope.value,
                    value,
                    item.reason or f"tripped {item.id}",
                    f"policy:{item.id}",
                    view.now,
                    "tripwire",
                )
                try:
                    self.store.set_stop(rec)
                    out.append(rec.to_dict())
                except StoreError as exc:
                    failures.append(Failure(f"stop {scope.value}={value}", str(exc), "halt (not persisted)"))
        return out

    # ---- settling ----------------------------------------------------------------------------
    def settle(
        self,
        decision_id: str,
        actual_cost: Mapping[str, float] | float | None = None,
        outcome: str = "success",
        labels: tuple[str, ...] | list[str] = (),
    ) -> Settlement:
        """Record what an action really did: commit its actual cost (refunding or charging the
        difference), add its result labels to the run, and run the checks after an action."""
        ctx = self._pending.pop(decision_id, None)
        if ctx is None and decision_id in self._settle_runs:
            if isinstance(actual_cost, Mapping):  # validated as on the full path
                {str(k): float(v) for k, v in actual_cost.items()}
            elif actual_cost is not None:
                float(actual_cost)
            return self._settle_lite(decision_id, self._settle_runs.pop(decision_id), outcome, labels)
        if self._shared_pending:
            recalled = self._recall(decision_id)  # also marks a shared record settled
            ctx = ctx or recalled
            if ctx is None:  # made without a record (perhaps under the policy before a reload)
                return self._settle_by_hold(decision_id, actual_cost, outcome, labels)
        if ctx is None:
            raise _unknown(decision_id)
        now = self.clock()
        st = Settlement(decision_id, False, outcome, labels=tuple(labels))
        hold, run, view, req = ctx
        actual_map: dict[str, float] = {}
        if isinstance(actual_cost, Mapping):
            actual_map = {str(k): float(v) for k, v in actual_cost.items()}
        elif actual_cost is not None:
            units = list(req.cost) or sorted(self.policy.units)
            if units:
                actual_map = {units[0]: float(actual_cost)}
        if hold:
            amount = None
            if actual_map:
                # Holds carry one unit per line; the actual of the hold's unit is committed.
                unit_of_hold = next(iter(req.cost), None)
                if unit_of_hold in actual_map:
                    amount = micros(actual_map[unit_of_hold])
            try:
                _committed(st, self.store.commit(hold, amount, now=now))
            except StoreError as exc:
                st.failures.append(Failure("state store", f"commit: {exc}", "hold expires by TTL"))
        spent = actual_map or dict(req.cost)
        if spent and self._velocity:
            self._count_velocity(req, view, spent, now, st)
        all_labels = set(labels)
        checks = view.select(self.policy.index["results"])
        if checks:
            act = view.full_activation()
            act["result"] = {
                "outcome": outcome,
                "failed": outcome not in ("success", "ok"),
                "cost": actual_map or dict(req.cost),
                "labels": sorted(labels),
            }
            act["estimate"] = dict(req.cost)
            probe = view.copy()
            probe._activation = act
            worst: Outcome | None = None
            stops: list[tuple[Scope, Any]] = []
            for chk in checks:
                try:
                    holds = check_conditions(chk.conditions, probe)
                except EvalError as exc:
                    st.failures.append(Failure(f"check {chk.id}", str(exc), chk.fail.value))
                    holds = chk.fail.value != "ignore"
                if not holds:
                    continue
                eff = chk.outcome or Outcome.ALLOW
                st.checks.append(
                    RuleHit(
                        chk.id,
                        "on result",
                        eff,
                        chk.reason,
                        str(chk.source) if chk.source else None,
                        chk.mode is Mode.SHADOW,
                    )
                )
                if chk.mode is Mode.SHADOW:
                    continue
                all_labels |= chk.labels
                if chk.outcome is not None and (worst is None or chk.outcome.rank > worst.rank):
                    worst = chk.outcome
                if chk.outcome is Outcome.HALT:
                    stops.append((chk.stop_scope or Scope.AGENT, chk))
            if worst is not None and (st.outcome is None or worst.rank > st.outcome.rank):
                st.outcome = worst
            if stops:
                for d in self._set_stops(stops, req, view, st.failures):
                    st.stops.append(StopRecord(**d))
        if run and all_labels:
            try:
                self.store.add_labels(f"run:{run}", frozenset(all_labels), now=now, ttl_s=7 * 86400.0)
            except StoreError as exc:
                st.failures.append(Failure("state store", f"labels: {exc}", "labels lost"))
        st.labels = tuple(sorted(all_labels))
        return self._traced(st)

    def _traced(self, st: Settlement) -> Settlement:
        if self.trace is not None:
            try:
                self.trace.record_event("settlement", st.to_dict())
            except Exception as exc:
                st.failures.append(Failure("trace", str(exc), "settlement not traced"))
        return st

    def _by_hold(self, req: Req) -> bool:
        """Settling this decision needs nothing but its hold ``h:<decision id>``: the policy has
        one unit and no check or count after an action, and the request names no run and no
        idempotency key. Such a decision writes no settlement record (one row less per decision);
        another replica settles it from the hold alone (:meth:`_settle_by_hold`)."""
        return self._hold_settles and not req.run and not req.idempotency_key

    def _settle_by_hold(
        self,
        did: str,
        actual_cost: Mapping[str, float] | float | None,
        outcome: str,
        labels: tuple[str, ...] | list[str],
    ) -> Settlement:
        """Settle a decision another replica made that held money and needs nothing else. The
        actual cost is in the policy's one unit, or the one unit it names; when neither tells
        the unit, the decision is unknown here (KeyError), as it was before holds settled."""
        unit = next(iter(self.policy.units)) if len(self.policy.units) == 1 else None
        amount = None
        if isinstance(actual_cost, Mapping):
            actual = {str(k): float(v) for k, v in actual_cost.items()}
            if unit is None and len(actual) == 1:
                unit = next(iter(actual))
            if unit is None:
                raise _unknown(did)
            if unit in actual:
                amount = micros(actual[unit])
        elif actual_cost is not None:
            if unit is None:
                raise _unknown(did)
            amount = micros(float(actual_cost))
        st = Settlement(did, False, outcome, labels=tuple(sorted(set(labels))))
        try:
            cr = self.store.commit(f"h:{did}", amount, now=self.clock())
        except StoreError as exc:
            st.failures.append(Failure("state store", f"commit: {exc}", "hold expires by TTL"))
            return self._traced(st)
        if not cr.found or cr.already:
            raise _unknown(did)
        _committed(st, cr)
        return self._traced(st)

    def _settle_lite(
        self, did: str, run: str | None, outcome: str, labels: tuple[str, ...] | list[str]
    ) -> Settlement:
        """Settle a lean allow: nothing was held and no check runs after it; only the run's
        labels change. (After a hot reload the entry may meet a policy with checks: the decision
        was made under one without them, so none apply to it.)"""
        st = Settlement(did, False, outcome, labels=tuple(sorted(set(labels))))
        if run and labels:
            try:
                self.store.add_labels(f"run:{run}", frozenset(labels), now=self.clock(), ttl_s=7 * 86400.0)
            except StoreError as exc:
                st.failures.append(Failure("state store", f"labels: {exc}", "labels lost"))
        return st

    def _remember(
        self,
        did: str,
        hold_id: str | None,
        req: Req,
        view: View,
        failures: list[Failure],
        stored: bool = False,
    ) -> None:
        """Keep what settling this decision needs: in memory, and in a shared store for other
        replicas (``stored``: the decision's batch already wrote it)."""
        put_bounded(self._pending, did, (hold_id, req.run, view, req))
        if (
            self._shared_pending
            and not stored
            and (hold_id or req.run or self.policy.result_checks or self._velocity)
            and not (hold_id and self._by_hold(req))
        ):
            try:
                self.store.put_record(
                    "pending",
                    did,
                    {"hold": hold_id, "request": req.to_dict(), "now": view.now},
                    ttl_s=PENDING_TTL_S,
                )
            except StoreError as exc:
                failures.append(
                    Failure("state store", f"pending {did}: {exc}", "settle only on this replica")
                )

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
        req = parse_request(doc["request"])
        view = build_view(self.policy, req, float(doc.get("now") or self.clock()))
        return (doc.get("hold"), req.run, view, req)

    def _count_velocity(
        self, req: Req, view: View, spent: Mapping[str, float], now: float, st: Settlement
    ) -> None:
        """Spend velocity counts money actually spent; a trip stops its scope for later decisions."""
        pairs = velocity_hits(self.policy, req, view, spent)
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
                    "tripwire",
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
                st.checks.append(
                    RuleHit(tw.id, "tripwire", tw.outcome, tw.reason, str(tw.source) if tw.source else None)
                )
                if st.outcome is None or tw.outcome.rank > st.outcome.rank:
                    st.outcome = tw.outcome
                if tw.outcome is Outcome.HALT and tw.stop_scope is not None:
                    stops.append((tw.stop_scope, tw))
        for d in self._set_stops(stops, req, view, st.failures) if stops else ():
            st.stops.append(StopRecord(**d))


def _unknown(did: str) -> KeyError:
    return KeyError(f"unknown or already settled decision {did!r}")


def _committed(st: Settlement, cr: CommitResult) -> None:
    """A hold's commit, in a settlement: committed or not, and each budget line after it."""
    st.committed = cr.ok
    for ln in cr.lines:
        st.boundaries.append(
            BoundaryCheck(
                "budget",
                ln.key,
                ln.ok,
                key=ln.key,
                used=ln.used / MICROS,
                reserved=ln.reserved / MICROS,
                amount=ln.amount / MICROS,
                limit=ln.limit / MICROS,
            )
        )
