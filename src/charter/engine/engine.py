"""The in-process engine: decide (stops, rules, stateful boundaries in one atomic batch) and settle."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any, Protocol

from charter.engine.decision import BoundaryCheck, Decision, Failure, RuleHit
from charter.engine.evaluate import RunView, View
from charter.engine.lane import gate_obligations, make_lane, not_recorded
from charter.engine.outcomes import ID_BASE, Outcomes
from charter.engine.plan import Planner
from charter.engine.policy import CompiledPolicy, EscalationPath
from charter.engine.prepare import build_view, stop_keys
from charter.engine.req import Req, RequestError, _fast, parse_request, validated
from charter.engine.request import Request
from charter.engine.settling import PENDING_TTL_S, Pending, Settlement, put_bounded
from charter.engine.stateful import (
    boundary_kind,
    depth_trips,
    plan_batch,
    read_result,
)
from charter.enums import Mode, Outcome, Scope
from charter.state import StateStore, StoreError

__all__ = ["Engine", "RequestError", "Settlement", "TraceSink"]


class TraceSink(Protocol):
    """Where decision records go (the trace package implements it)."""

    def record_decision(self, decision: Decision, request: Req) -> None: ...

    def record_event(self, kind: str, payload: Mapping[str, Any]) -> None: ...


def _memory_store_type() -> type:
    from charter.state.memory import MemoryStore

    return MemoryStore


class _Combined:
    """The one combining rule, applied as contributions arrive: the strictest outcome wins, and
    the deciding list holds every contribution equal to it (ids unique)."""

    __slots__ = ("default_deny", "hits", "outcome", "paths", "stops")

    def __init__(self, outcome: Outcome, hits: list[RuleHit], default_deny: bool):
        self.outcome = outcome
        self.hits = hits
        self.default_deny = default_deny
        self.paths: list[EscalationPath | None] = []
        self.stops: list[tuple[Scope | None, Any]] = []

    def add(
        self, eff: Outcome, hit: RuleHit, path: EscalationPath | None, stop: Scope | None, item: Any
    ) -> None:
        """One more contribution."""
        if eff.rank > self.outcome.rank or (self.default_deny and eff.rank >= self.outcome.rank):
            self.outcome, self.hits, self.default_deny = eff, [hit], False
            self.paths = [path]
        elif eff is self.outcome:
            if all(h.id != hit.id for h in self.hits):
                self.hits = [*self.hits, hit]
            self.paths.append(path)
        if eff is Outcome.HALT and item is not None:
            self.stops.append((stop, item))

    def add_errors(self, errors: list[tuple[Any, Outcome, str]]) -> None:
        """Boundaries whose conditions failed contribute their failure mode."""
        for item, took, msg in errors:
            kind = boundary_kind(item)
            self.add(
                took,
                RuleHit(
                    item.id, kind, took, item.reason, str(item.source) if item.source else None, False, msg
                ),
                None,
                None,
                None,
            )

    def sorted_hits(self) -> list[RuleHit]:
        """Deciding hits by id (order-independent output)."""
        return sorted(self.hits, key=lambda h: h.id) if len(self.hits) > 1 else self.hits


class _Both:
    """Tells two notifiers (the user's and the trace)."""

    def __init__(self, a: Any, b: Any):
        self.a, self.b = a, b

    def notify(self, kind: str, event: str, record: Mapping[str, Any]) -> None:
        self.a.notify(kind, event, record)
        self.b.notify(kind, event, record)


def _escalation_obligation(path: EscalationPath, rules: list[str]) -> dict[str, Any]:
    first = path.steps[0] if path.steps else None
    return {
        "target": first.target if first else path.name,
        "chain": [{"target": s.target, "timeout_s": s.timeout_seconds} for s in path.steps],
        "fallback": path.fallback.value,
        "severity": path.severity,
        "rules": rules,
    }


class Engine(Outcomes):
    """Decides actions against a compiled policy. Thread-safe; state lives in the store."""

    #: engines built while this is false decide without the lane (policy coverage turns it off:
    #: it observes evaluation through Plan.run, which the lane does not call)
    lane_enabled: bool = True

    def __init__(
        self,
        policy: CompiledPolicy,
        store: StateStore | None = None,
        trace: TraceSink | None = None,
        clock: Callable[[], float] | None = None,
        notifier: Any = None,
    ):
        if store is None:
            from charter.state.memory import MemoryStore

            store = MemoryStore()
        self.policy = policy
        self.store = store
        self.trace = trace
        self.clock = clock or time.time
        # INVARIANT: ids of one engine sort in the order they were made (fixed width: the
        # counter starts at 2**48 and the leading "1" is cut off), so stores that key rows by
        # decision id append to their B-trees instead of splitting pages in the middle.
        self._ids = itertools.count(ID_BASE + 1)
        self._prefix = os.urandom(6).hex()
        self._id_prefix = f"d-{self._prefix}-"
        self._pending: dict[str, Pending] = {}
        #: allowed lean decisions that settling can only add run labels to: id -> run id. Strings
        #: only, so the garbage collector never walks it (a tuple per decision made p99 spikes).
        self._settle_runs: dict[str, str | None] = {}
        self._rules = {r.id: r for r in policy.rules}
        self._planner = Planner(policy)
        self._depth_trips = any(t.trigger.value == "delegation-depth" for t in policy.tripwires)
        self._velocity = any(t.trigger.value == "spend-velocity" for t in policy.tripwires)
        self._shared_pending = not isinstance(store, _memory_store_type())
        self._pend_always = bool(policy.result_checks) or self._velocity
        self._hold_settles = self._shared_pending and len(policy.units) == 1 and not self._pend_always
        # The in-memory store can answer "is anything stopped?" without a batch (hot path).
        from charter.state.memory import MemoryStore

        in_memory = isinstance(store, MemoryStore)
        #: the in-memory store's live stop table (empty: nothing is stopped), None for other stores
        self._stops = store.stops_table if in_memory else None  # type: ignore[attr-defined]
        self._active_stop = store.active_stop if in_memory else None  # type: ignore[attr-defined]
        #: the lean path applies: nothing to count, store or trace for a stateless policy
        self._stateful = policy.stateful
        self._lean = in_memory and trace is None and not self._stateful and not self._depth_trips
        #: a lean allow needs only its run id to be settled (no checks after actions, no velocity)
        self._lite = self._lean and not policy.result_checks and not self._velocity
        from charter.approvals import Approvals, Escalations, Stops

        if trace is not None:
            bind = getattr(trace, "bind_policy", None)
            if bind is not None:
                bind(policy)
            if hasattr(trace, "notify"):
                notifier = _Both(notifier, trace) if notifier is not None else trace

        #: human gates: list, get, approve, deny
        self.approvals = Approvals(store, self.clock, notifier)
        #: escalations: list, get, answer
        self.escalations = Escalations(store, policy.groups, self.clock, notifier)
        #: emergency stops: stop, resume (two-person by default), list, log
        self.stops = Stops(store, policy.stops.members, policy.stops.resume_requires, self.clock, notifier)
        if self._lite and Engine.lane_enabled:
            # the commonest requests are decided in one pass (engine/lane.py); the lane hands
            # everything else to the method above, so behaviour is the same either way
            self.decide = make_lane(self, self._decide_request)  # type: ignore[method-assign,assignment]

    # ---- deciding ----------------------------------------------------------------------------
    def decide(self, request: Request | Req | Mapping[str, Any]) -> Decision:
        """Decide one action. Raises RequestError for a malformed request; every other failure
        is recorded in the decision and never yields ``allow``."""
        return self._decide_request(request, perf_counter())

    def _decide_request(self, request: Request | Req | Mapping[str, Any], t0: float) -> Decision:
        # a dict the fast path declines goes straight to pydantic (no second fast attempt)
        req = (_fast(request) or validated(request)) if type(request) is dict else parse_request(request)
        if self._lean and not (req.approval or req.idempotency_key or req.chain) and not self._stops:
            return self._decide_lean(req, t0)
        return self._decide(req, t0)

    def _decide_lean(self, req: Req, t0: float) -> Decision:
        """The common case, with nothing to count: a stateless policy, an in-memory store with no
        stop active, no approval to redeem, no idempotency key, no delegation chain, no trace.

        INVARIANT: gives exactly what ``_decide`` gives for these requests (the differential and
        conformance tests run both paths).
        """
        policy = self.policy
        now = req.time if req.time is not None else self.clock()
        view = build_view(policy, req, now)
        verdict = self._planner.plan(view).run(policy, view)
        outcome = verdict.outcome
        if outcome is Outcome.ALLOW:
            did = self._new_id()
            if self._lite:
                put_bounded(self._settle_runs, did, req.run)
                view._activation = None  # view <-> activation is a cycle: free both by refcount
            else:
                self._remember(did, None, req, view, verdict.failures)
        elif outcome is Outcome.DENY and not verdict.halts:
            did = self._new_id()
            view._activation = None
        else:
            return self._decide(req, t0, view, verdict)
        d = Decision(
            did,
            outcome,
            tuple(verdict.deciding),
            policy.revision,
            (),
            tuple(verdict.shadow),
            tuple(verdict.failures),
            {},
            0.0,
            verdict.default_deny,
        )
        d.elapsed_us = (perf_counter() - t0) * 1e6
        return d

    def _decide(self, req: Req, t0: float, view: View | None = None, verdict: Any = None) -> Decision:
        """The general path: run state, stops, tripwires, rates, budgets, human gates, trace."""
        policy = self.policy
        now = req.time if req.time is not None else self.clock()
        if view is None:
            view = build_view(policy, req, now)
        did = self._new_id()
        failures: list[Failure] = []

        if policy.uses_run_state and req.run:
            try:
                rs = self.store.run_state(f"run:{req.run}")
                view.run = RunView(rs.steps, rs.labels, rs.marks)
            except StoreError as exc:
                return self._failed(did, req, t0, f"state store: {exc}", failures)

        if verdict is None or view.run is not None:
            verdict = self._planner.plan(view).run(policy, view)
        failures.extend(verdict.failures)
        c = _Combined(verdict.outcome, verdict.deciding, verdict.default_deny)
        for r in verdict.escalations:
            c.paths.append(r.escalation)
        for r in verdict.halts:
            if r.stop_scope is not None:
                c.stops.append((r.stop_scope, r))
        boundaries: list[BoundaryCheck] = []
        redeem: tuple[str, str] | None = None  # (kind, id) to use once if the action is allowed
        pending_id: str | None = None
        if req.approval:
            outcome, deciding, redeem, pending_id = self._resubmission(req, c.outcome, c.hits)
            if outcome is not c.outcome or redeem is not None:
                c.outcome, c.hits, c.default_deny = outcome, deciding, False

        if self._depth_trips and view.chain:
            errors: list[tuple[Any, Outcome, str]] = []
            for tw in depth_trips(policy, req, view, errors, failures):
                boundaries.append(
                    BoundaryCheck(
                        "tripwire",
                        tw.id,
                        tw.mode is not Mode.ENFORCE,
                        used=float(len(view.chain)),
                        limit=tw.threshold,
                        detail="delegation-depth",
                    )
                )
                if tw.mode is Mode.ENFORCE:
                    c.add(
                        tw.outcome,
                        RuleHit(
                            tw.id, "tripwire", tw.outcome, tw.reason, str(tw.source) if tw.source else None
                        ),
                        tw.escalation,
                        tw.stop_scope,
                        tw,
                    )
            c.add_errors(errors)

        hold_id = None
        recorded = False  # the settlement record was written by the batch
        if self._stops is not None and not self._stateful and not req.idempotency_key:
            # INVARIANT: same semantics as the batch below for a policy with no stateful boundary:
            # only the stop check; the in-memory store answers it without a batch.
            active = self._active_stop
            assert active is not None  # in-memory store (INVARIANT of this branch)
            stop = active(stop_keys(req, view)) if self._stops else None
            if stop is not None:
                return self._halted(did, req, t0, stop, boundaries, verdict.shadow, failures)
        else:
            keys = stop_keys(req, view)
            # the settlement record rides in the batch (one store call); not when an approval is
            # redeemed after it, which can still turn the decision down
            pend = PENDING_TTL_S if self._shared_pending and not req.approval else None
            allow = c.outcome is Outcome.ALLOW
            plan = plan_batch(
                policy, req, view, allow, keys, did, pend, self._pend_always, self._by_hold(req)
            )
            failures.extend(plan.failures)
            if plan.errors:
                c.add_errors(plan.errors)
                if c.outcome is not Outcome.ALLOW:
                    # a boundary that failed closed: count tripwires, but reserve nothing
                    plan = plan_batch(policy, req, view, False, keys, did)
            try:
                res = self.store.apply(plan.batch)
            except StoreError as exc:
                return self._failed(did, req, t0, f"state store: {exc}", failures)
            if res.replayed_payload is not None:
                return self._replayed(res.replayed_payload)
            if res.stop is not None:
                return self._halted(did, req, t0, res.stop, boundaries, verdict.shadow, failures)
            recorded = res.recorded
            st = read_result(plan, res, view)
            boundaries.extend(st.checks)
            for kind, bid, eff, reason, path in st.deciding:
                c.add(eff, RuleHit(bid, kind, eff, reason), path, None, None)
            c.stops.extend(st.stops_to_set)
            if res.reserve is not None and res.reserve.ok and plan.batch.reserve is not None:
                if c.outcome is Outcome.ALLOW:
                    hold_id = plan.batch.reserve.hold_id
                else:
                    # A stricter outcome arrived after the reservation: give the money back.
                    self._release(plan.batch.reserve.hold_id, now, failures)

        if redeem is not None and c.outcome is Outcome.ALLOW:
            service = self.approvals if redeem[0] == "approval" else self.escalations
            try:
                used = service.redeem(redeem[1], did)
            except StoreError as exc:
                used = False
                failures.append(Failure("state store", f"redeem {redeem[1]}: {exc}", "deny"))
            if not used:
                if hold_id:
                    self._release(hold_id, now, failures)
                    hold_id = None
                c.outcome, c.default_deny = Outcome.DENY, False
                c.hits = [
                    RuleHit(
                        f"{redeem[0]}:{redeem[1]}",
                        redeem[0],
                        Outcome.DENY,
                        f"The {redeem[0]} {redeem[1]} was already used; it allows one action.",
                    )
                ]
        outcome, deciding, default_deny = c.outcome, c.sorted_hits(), c.default_deny
        stops_to_set = [(scope, item) for scope, item in c.stops if scope is not None]

        obligations: dict[str, Any] = {}
        if outcome is Outcome.REQUIRE_APPROVAL and verdict.approvals:
            obligations["approvals"] = gate_obligations(verdict.approvals)
        if outcome is Outcome.ESCALATE:
            paths = [p for p in c.paths if p is not None]
            if paths:
                obligations["escalation"] = _escalation_obligation(paths[0], [h.id for h in deciding])
            else:
                obligations["escalation"] = {
                    "target": None,
                    "chain": [],
                    "fallback": "deny",
                    "rules": [h.id for h in deciding],
                }
            if view.signals:
                obligations["escalation"]["signals"] = [dict(s) for s in view.signals]
        if outcome is Outcome.HALT and stops_to_set:
            obligations["stops"] = self._set_stops(stops_to_set, req, view, failures)
        if outcome in (Outcome.REQUIRE_APPROVAL, Outcome.ESCALATE):
            try:
                self._open_record(did, req, outcome, obligations, deciding, pending_id)
            except StoreError as exc:
                outcome, deciding, default_deny = not_recorded(outcome, exc, failures)
        if outcome is Outcome.ALLOW or hold_id:
            self._remember(did, hold_id, req, view, failures, recorded)
        evidence = self._evidence(deciding, view) if self.trace is not None else {}
        return self._finish(
            did,
            req,
            outcome,
            deciding,
            t0,
            boundaries=boundaries,
            shadow=verdict.shadow,
            failures=failures,
            obligations=obligations,
            default_deny=default_deny,
            hold_id=hold_id,
            evidence=evidence,
        )

    async def adecide(self, request: Request | Req | Mapping[str, Any]) -> Decision:
        """Async variant of :meth:`decide` (store I/O runs in a worker thread)."""
        from charter.state.memory import MemoryStore

        if isinstance(self.store, MemoryStore):
            return self.decide(request)
        return await asyncio.to_thread(self.decide, request)

    # ---- convenience -------------------------------------------------------------------------
    def close(self) -> None:
        """Close the store."""
        self.store.close()
