"""The engine: the one decide pipeline (validate, resolve, plan, verdict, stateful step, build) and settle."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from time import perf_counter
from typing import Any, Protocol

from charter.engine.decision import Decision, Failure, RuleHit
from charter.engine.evaluate import Verdict
from charter.engine.finish import DecisionBuilder, evidence
from charter.engine.gates import HumanGates, not_recorded
from charter.engine.grants import GrantTable, Run
from charter.engine.history import PartCache, attach_loader
from charter.engine.obligations import NONE, ApprovalGate, Escalation, HumanRecord, Obligations
from charter.engine.observe import Observer, Observers
from charter.engine.plan import Planner
from charter.engine.policy import CompiledPolicy
from charter.engine.request import Request
from charter.engine.runimport import RunImport, export_run, import_run
from charter.engine.runlabels import entered_labels
from charter.engine.settle import PENDING_LIMIT, PendingDecisions, Settlement, Settler
from charter.engine.stateful import RUN_TTL_S, release, set_stops
from charter.engine.step import Ruling, StatefulStep, _failed
from charter.engine.validate import ValidRequest, _common_shape, check_cost_units, validate_request
from charter.engine.view import Activation, RunView, View, build_view
from charter.enums import HitKind, Outcome
from charter.errors import RequestError
from charter.state import StateStore, StoreError

__all__ = ["Engine", "RequestError", "Settlement", "TraceSink"]

#: decision ids count up from here: ``hex(ID_BASE + n)[3:]`` is n in 12 hex digits
ID_BASE = 1 << 48
#: How long a decision is remembered for retries under its idempotency key.
IDEMPOTENCY_TTL_S = 86400.0
_ALLOW = Outcome.ALLOW
_DENY = Outcome.DENY
#: The verdict of a decision that failed before the rules ran (the store could not be read).
_NO_VERDICT = Verdict(Outcome.DENY, (), (), (), False)


class TraceSink(Protocol):
    """Where decision records go (the trace package implements it)."""

    def record_decision(self, decision: Decision, request: ValidRequest) -> None: ...

    def record_event(self, kind: str, payload: Mapping[str, Any]) -> None: ...


class _Both:
    """Tells two notifiers (the user's and the trace)."""

    def __init__(self, a: Any, b: Any):
        self.a, self.b = a, b

    def notify(self, kind: str, event: str, record: Mapping[str, Any]) -> None:
        self.a.notify(kind, event, record)
        self.b.notify(kind, event, record)


class Engine:
    """Decides actions against a compiled policy. Thread-safe; state lives in the store.

    The engine owns the objects each step of deciding uses: the planner (select, plan, verdict),
    the stateful step, the human gates, the decision builder and the settler; observers
    (coverage, OpenTelemetry, explainers) are told what happens (docs/architecture.md).
    """

    def __init__(
        self,
        policy: CompiledPolicy,
        store: StateStore | None = None,
        trace: TraceSink | None = None,
        clock: Callable[[], float] | None = None,
        notifier: Any = None,
        observers: Sequence[Observer] = (),
        pending: PendingDecisions | None = None,
        new_id: Callable[[], str] | None = None,
        specialise: bool = True,
    ):
        from charter.approvals import Approvals, Escalations, Stops
        from charter.state.memory import MemoryStore

        if store is None:
            store = MemoryStore()
        self.policy = policy
        self.store = store
        self.trace = trace
        self.clock = clock or time.time
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
        #: the unsettled decisions (an engine after a hot reload takes its predecessor's)
        self.pending = pending if pending is not None else PendingDecisions()
        in_memory = isinstance(store, MemoryStore)
        #: None when nothing observes this engine (the hot path tests for None only)
        self._observer: Observers | None = Observers(observers) if observers else None
        self._planner = Planner(policy, specialise=specialise)
        self._gates = HumanGates(policy, self.approvals, self.escalations)
        self._settler = Settler(
            policy, store, self.clock, self.pending, not in_memory, self._record_settlement
        )
        self._settler.observer = self._observer
        self._state = StatefulStep(policy, store, self._gates, self._settler)
        self._builder = DecisionBuilder(policy.revision)
        #: where decision ids come from (unique per engine and store; default: sequential_ids())
        self._new_id = new_id or sequential_ids()
        #: the default ids, made inline by _decide (a frame less per decision); None: call _new_id
        self._ids = self._new_id if isinstance(self._new_id, SequentialIds) else None
        self._units = policy.units
        self._rules = {r.id: r for r in policy.rules}
        self._reads_history = policy.uses_run_state
        #: the policy declares run grant kinds (granted(), run.grants)
        self._grants = bool(policy.grant_kinds)
        #: parts of history entries built by earlier decisions (engine/history.py): only on the
        #: memory store, which hands out the events it keeps (another store's events are new objects
        #: at each read, so a cache would only hold them in memory)
        self._history_parts: PartCache | None = {} if getattr(store, "backend", "") == "memory" else None
        #: the in-memory store's live stop table (never rebound; empty: nothing is stopped),
        #: or a table that is never empty for other stores (their stops live in the store)
        self._stops: Mapping[Any, Any] = store.stops_table if in_memory else {None: None}  # type: ignore[attr-defined]
        #: nothing is stateful: no store call unless a stop, a key or a human answer asks for one
        #: (``specialise=False``: every decision takes the stateful step, for tests comparing both)
        self._stateless = specialise and not policy.stateful and not self._state.depth_trips
        #: the planner's memo of plans by selection key (read inline by _decide)
        self._plans = self._planner._plans
        #: where an allow that settling can only add run labels to is kept (None: the settler decides)
        self._runs = self.pending.runs if self._settler.lite and specialise else None

    # ---- deciding ----------------------------------------------------------------------------------
    def decide(self, request: Request | ValidRequest | Mapping[str, Any]) -> Decision:
        """Decide one action. Raises RequestError for a malformed request (nothing is decided or
        stored); every other failure is recorded in the decision and never yields ``allow``."""
        t0 = perf_counter()
        # the validator's shape tier first (validate_request dispatches the same way)
        req = _common_shape(request) if request.__class__ is dict else None
        if req is None:
            req = validate_request(request)
        if req.cost:
            check_cost_units(req.cost, self._units)
        observer = self._observer
        if observer is None:
            return self._decide(req, t0, None)
        token = observer.decision_started(req)
        try:
            d = self._decide(req, t0, observer)
        except BaseException as exc:
            observer.decision_failed(token, req, exc)
            raise
        observer.decision_finished(token, req, d)
        return d

    def _decide(self, req: ValidRequest, t0: float, observer: Observer | None) -> Decision:
        """The pipeline, after validation. Each step is skipped when it cannot apply."""
        ids = self._ids
        did = ids.prefix + hex(next(ids.counter))[3:] if ids is not None else self._new_id()
        # 2. resolve: the actor, the target, the time (and the run's history, if rules read it).
        # The time of every window, hold and run is the engine's clock, never ``context.time``:
        # that is the caller's claim (conditions read it as such); as the state's time it would
        # let an agent pick a new calendar window or rate window per request (docs/security.md)
        view = build_view(self.policy, req, self.clock())
        if req.provenance and req.run:
            view.calls = self._settler.call_lookup(req.run)
        if self._reads_history and req.run:
            try:
                rs = self.store.run_state(f"run:{req.run}")
            except StoreError as exc:
                return self._conclude(did, view, _failed(Ruling(_NO_VERDICT), f"state store: {exc}"), t0)
            view.run = RunView(rs.steps, rs.labels, rs.marks)
            if rs.grants:
                view.run.grants = rs.grants
                if self._grants:
                    view.run.table = GrantTable(self.policy, view, rs.grants)
            if self.policy.history_detail:
                attach_loader(view.run, self.store, f"run:{req.run}", self.policy, self._history_parts)
        # 3. select and plan (the planner's memo read inline: View.selection_key() spelled out, a
        # frame less; tests/unit/test_stateful_plans.py and test_specialised.py compare the paths)
        plan = self._plans.get(
            (
                view.kind._value_,
                view.target,
                view.actor_id,
                view.roles,
                view.ancestors,
                req.workflow,
                view.target_roles,
            )
        )
        if plan is None:
            plan = self._planner.plan(view)
        # 4. the verdict of the rules
        verdict = plan.run(view)
        if observer is not None:
            observer.rules_evaluated(view, plan.candidates, verdict)
        # 5. the stateful step, when anything is stateful
        if self._stateless and not (self._stops or req.idempotency_key or req.approval):
            outcome = verdict.outcome
            if (outcome is _ALLOW or outcome is _DENY) and self.trace is None:
                # the verdict is the decision: no state, nothing to open, set or record
                # (INVARIANT: what _conclude gives it; tests/unit/test_specialised.py compares)
                if outcome is _ALLOW:
                    if req.run and (view.labels or req.provenance):
                        # an allowed action's labels join its run whatever the policy
                        # (docs/semantics.md 8.1): one store operation; if it fails, so does
                        # the decision (closed)
                        failure = self._keep_labels(view)
                        if failure is not None:
                            return self._conclude(did, view, _failed(Ruling(verdict), failure), t0)
                    runs = self._runs
                    if runs is not None and req.call_id is None:
                        if len(runs) < PENDING_LIMIT:
                            runs[did] = req.run  # PendingDecisions.keep_run, inline (a frame less)
                        else:
                            self.pending.keep_run(did, req.run)
                    else:
                        self._settler.keep(did, None, view)
                if view._activation.__class__ is Activation:
                    view._activation = None  # view <-> activation is a cycle: free both by refcount
                return self._builder.verdict(did, verdict, t0)
            if outcome is _ALLOW and req.run and (view.labels or req.provenance):
                failure = self._keep_labels(view)  # (as above: traced)
                if failure is not None:
                    return self._conclude(did, view, _failed(Ruling(verdict), failure), t0)
            return self._conclude(did, view, verdict, t0)  # the verdict is the ruling
        return self._conclude(did, view, self._state.rule(did, view, verdict, observer), t0)

    def _keep_labels(self, view: View) -> str | None:
        """Add an allowed action's labels to its run (a policy with no run state: no batch, so no
        step is counted); the failure's message when the store refuses."""
        labels = entered_labels(view)
        if not labels:
            return None
        try:
            self.store.mark_labels(f"run:{view.req.run}", labels, now=view.now, ttl_s=RUN_TTL_S)
        except StoreError as exc:
            return f"state store: run labels: {exc}"
        return None

    def _conclude(self, did: str, view: View, ruling: Ruling | Verdict, t0: float) -> Decision:
        """6. The decision of a ruling (or of a verdict no state changed): the obligations of a
        gate, an escalation or a halt (human records opened, stops set), what settling needs,
        the evidence when tracing; built by the one DecisionBuilder."""
        outcome = ruling.outcome
        if ruling.__class__ is Verdict and (outcome is _ALLOW or outcome is _DENY):
            # no state was consulted and nothing is to be opened or set: the verdict as it is
            # (INVARIANT: what the general branch below gives it; test_specialised.py compares)
            if outcome is _ALLOW:
                self._settler.keep(did, None, view)
            d = self._builder.build(
                did,
                outcome,
                ruling.deciding,
                (),
                ruling.shadow,
                ruling.failures,
                {},
                ruling.default_deny,
                None,
                None if self.trace is None else evidence(ruling.deciding, view, self._rules),
                t0,
            )
            if view._activation.__class__ is Activation:
                view._activation = None  # view <-> activation is a cycle: free both by refcount
            return d if self.trace is None else self._record(d, view.req, t0, "")
        if ruling.replayed is not None:
            return self._builder.replayed(ruling.replayed)
        obligations: dict[str, Any] = {}
        if outcome is not _ALLOW and outcome is not _DENY and not ruling.final:
            if not isinstance(ruling, Ruling):
                ruling = Ruling(ruling)
            obligations = self._obligations(did, view, ruling).to_dict()
            outcome = ruling.outcome
        failures = ruling.failures
        hold = ruling.hold_id
        if (outcome is _ALLOW or hold) and not ruling.final:
            failure = self._settler.keep(did, hold, view, ruling.recorded)
            if failure is not None:
                failures = (*failures, failure)
        deciding = ruling.deciding
        if deciding.__class__ is not tuple:
            deciding = tuple(sorted(deciding, key=_by_id) if len(deciding) > 1 else deciding)
        grants: tuple[dict[str, Any], ...] = ()
        if self._grants:
            run = view.run
            if run is not None and run.table is not None:
                grants = tuple(run.table.consulted)
                run.table = None  # view <-> table is a cycle: free both by refcount
        d = self._builder.build(
            did,
            outcome,
            deciding,
            tuple(ruling.boundaries),
            ruling.shadow,
            tuple(failures),
            obligations,
            ruling.default_deny,
            hold,
            evidence(deciding, view, self._rules) if self.trace is not None and not ruling.final else None,
            t0,
            grants,
        )
        if view._activation.__class__ is Activation:
            view._activation = None
        if self.trace is not None or view.req.idempotency_key:
            return self._record(d, view.req, t0, ruling.request_digest)
        return d

    def _obligations(self, did: str, view: View, ruling: Ruling) -> Obligations:
        """What a gate, an escalation or a halt obliges the caller to; opens the human record
        (a record that cannot be stored denies the action: fail closed)."""
        outcome = ruling.outcome
        approvals: tuple[ApprovalGate, ...] = ()
        escalation = None
        if outcome is Outcome.REQUIRE_APPROVAL:
            approvals = tuple(ApprovalGate.of(r) for r in ruling.approvals)
        elif outcome is Outcome.ESCALATE:
            path = next((p for p in ruling.paths if p is not None), None)
            escalation = Escalation.of(path, ruling.deciding, view.signals)
        elif outcome is Outcome.HALT:
            stops = [(scope, item) for scope, item in ruling.stops if scope is not None]
            if stops:
                return Obligations(stops=tuple(set_stops(self.store, stops, view, ruling.failures)))
            return NONE
        if not approvals and escalation is None:
            return NONE
        record: HumanRecord | None = ruling.pending
        if record is None:
            try:
                record = self._gates.open(
                    did, view.req, approvals, escalation, [h.reason for h in ruling.deciding]
                )
            except StoreError as exc:
                ruling.outcome, ruling.deciding = _DENY, [not_recorded(outcome, exc, ruling.failures)]
                ruling.default_deny = False
                return NONE
        return Obligations(approvals, escalation, record)

    def _record(self, d: Decision, req: ValidRequest, t0: float, digest: str) -> Decision:
        """Record the decision in the trace (a decision that cannot be traced is denied: fail
        closed) and remember it for retries under its idempotency key."""
        if self.trace is not None:
            try:
                self.trace.record_decision(d, req)
            except Exception as exc:
                if d.outcome.rank < _DENY.rank:
                    if d.hold_id:
                        release(self.store, d.hold_id, time.time(), [])
                    failures = (*d.failures, Failure("trace", str(exc), "deny"))
                    d = self._builder.build(
                        d.id, _DENY, (), d.boundaries, d.shadow, failures, {}, False, None, None, t0
                    )
        if req.idempotency_key and not _refused_key(d):
            payload = json.dumps({"digest": digest or req.digest(), "decision": d.to_dict()})
            # a failure leaves the decision standing; a retry is decided again, still fail-closed
            with contextlib.suppress(StoreError):
                self.store.remember(req.idempotency_key, payload, now=self.clock(), ttl_s=IDEMPOTENCY_TTL_S)
        return d

    def _record_settlement(self, st: Settlement) -> None:
        """A settlement goes to the trace (a failure to record it is kept in it) and observers."""
        if self.trace is not None:
            try:
                self.trace.record_event("settlement", st.to_dict())
            except Exception as exc:
                st.failures.append(Failure("trace", str(exc), "settlement not traced"))
        if self._observer:
            self._observer.settled(st)

    async def adecide(self, request: Request | ValidRequest | Mapping[str, Any]) -> Decision:
        """Async variant of :meth:`decide` (store I/O runs in a worker thread)."""
        from charter.state.memory import MemoryStore

        if isinstance(self.store, MemoryStore):
            return self.decide(request)
        return await asyncio.to_thread(self.decide, request)

    # ---- settling ---------------------------------------------------------------------------------
    def settle(
        self,
        decision_id: str,
        actual_cost: Mapping[str, float] | float | None = None,
        outcome: str = "success",
        labels: tuple[str, ...] | list[str] = (),
        result: Mapping[str, Any] | None = None,
    ) -> Settlement:
        """Record what an action really did: commit its actual cost (refunding or charging the
        difference), add its result labels to the run, and run the checks after an action.

        ``result``: the call's result; when the policy keeps history detail, the fields its tool
        declares (``result NAME: TYPE``) are kept in the run's history for ``where`` clauses
        (converted like arguments; a field of the wrong type is dropped and named in the
        settlement's failures; ``secret`` fields are never written to the trace).

        Raises SettleError for an invalid settlement (nothing is committed) and UnknownDecision
        for a decision this engine does not know or that was settled already.
        """
        return self._settler.settle(decision_id, actual_cost, outcome, labels, result)

    # ---- run grants -----------------------------------------------------------------------------
    def begin_run(
        self,
        run: str,
        *,
        actor: str = "",
        grants: Sequence[Mapping[str, Any]] = (),
        labels: Sequence[str] = (),
    ) -> Run:
        """Declare what a run may do before it does anything: its grants (``g1``..``gN``), bound to
        the run and its actor, and its first labels. All are stored or none.

        Raises GrantError (a charter.Error) with one problem per grant the policy refuses (G101-G104)
        or G105 when the run already has grants or a recorded step; nothing is stored then.
        """
        from charter.engine.grants import run_begin

        return run_begin(self, run, actor, grants, labels)

    def narrow_run(
        self, run: str, *, revoke: Sequence[str] = (), uses: Mapping[str, int] | None = None
    ) -> Run:
        """Revoke grants of a run, or leave them at most ``uses[id]`` more uses; never widens."""
        from charter.engine.grants import run_narrow

        return run_narrow(self, run, revoke, uses or {})

    # ---- a run's history ----------------------------------------------------------------------------
    def import_run(
        self, run: str, *, actor: str, events: Sequence[Mapping[str, Any]], charge: bool = False
    ) -> RunImport:
        """Seed ``run`` with calls that already happened (a resumed or moved run): each event
        (``call_id``, ``kind``, ``target``, ``args``, ``provenance``, ``result``, ``labels``,
        ``outcome``, ``at``) is appended in order as an allowed, settled call; no rule is
        evaluated for it. All events are checked before anything is written (RunImportError:
        nothing was); events whose call id the run already has are skipped, so a retry is safe.
        One ``run-import`` trace record (count, first and last call id, SHA-256 of the events)
        tells an audit that history entered the run without a decision of this engine.
        ``charge=True`` (count budgets and rates) is not supported yet: RunImportError."""
        done = import_run(self.policy, self.store, run, actor, events, charge, now=self.clock())
        if self.trace is not None:
            ids = [str(e.get("call_id")) for e in events]
            self.trace.record_event(
                "run-import",
                {
                    "run": run,
                    "actor": actor,
                    "count": done.imported,
                    "skipped": done.skipped,
                    "first": ids[0] if ids else None,
                    "last": ids[-1] if ids else None,
                    "sha256": done.digest,
                },
            )
        return done

    def export_run(self, run: str) -> dict[str, Any]:
        """The run's steps, labels and history (the last entries kept in detail), in the shape
        :meth:`import_run` takes; ``secret`` arguments and result fields are named in an event's
        ``redacted``, never given. Raises UnknownRun when the store has nothing of the run."""
        return export_run(self.store, run, self.policy)

    # ---- observing ----------------------------------------------------------------------------------
    def observe(self, observer: Observer) -> Engine:
        """Tell ``observer`` about every decision and settlement of this engine from now on."""
        self._observer = (self._observer or Observers()).add(observer)
        self._settler.observer = self._observer
        return self

    @property
    def observers(self) -> tuple[Observer, ...]:
        """What observes this engine."""
        return self._observer.items if self._observer is not None else ()

    # ---- convenience -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the store."""
        self.store.close()


class SequentialIds:
    """Decision ids ``d-<12 random hex>-<12 hex counter>`` (call it for the next one).

    INVARIANT: ids of one engine sort in the order they were made (fixed width: the counter
    starts at 2**48 and the leading "1" is cut off), so stores that key rows by decision id
    append to their B-trees instead of splitting pages in the middle. ``Engine._decide`` makes
    them inline from ``prefix`` and ``counter`` exactly as ``__call__`` does.
    """

    __slots__ = ("counter", "prefix")

    def __init__(self) -> None:
        self.prefix = f"d-{os.urandom(6).hex()}-"
        self.counter = itertools.count(ID_BASE + 1)

    def __call__(self) -> str:
        return self.prefix + hex(next(self.counter))[3:]  # hex(): half the cost of an f-string


def sequential_ids() -> Callable[[], str]:
    """A new source of sequential decision ids (see :class:`SequentialIds`)."""
    return SequentialIds()


def _by_id(hit: RuleHit) -> str:
    return hit.id


def _refused_key(d: Decision) -> bool:
    """The decision refused a reused idempotency key (it must not replace the first one's)."""
    return len(d.rules) == 1 and d.rules[0].kind is HitKind.IDEMPOTENCY


def new_engine_like(old: Engine, policy: CompiledPolicy, **kw: Any) -> Engine:
    """An engine for ``policy`` on ``old``'s store, trace and clock that can settle ``old``'s decisions."""
    return Engine(policy, store=old.store, trace=old.trace, clock=old.clock, pending=old.pending, **kw)


_ = Request  # the public request model is accepted by decide (re-exported for type hints)
