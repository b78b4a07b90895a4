"""The stateful step: stops, human answers, tripwires, rates and budgets turn a verdict into a ruling."""

from __future__ import annotations

import json
from typing import Any

from charter.engine.decision import BoundaryCheck, Failure, RuleHit
from charter.engine.evaluate import Verdict
from charter.engine.gates import FAIL_CLOSED, HumanGates
from charter.engine.obligations import HumanRecord
from charter.engine.observe import Observer
from charter.engine.policy import CompiledPolicy, EscalationPath
from charter.engine.settle import PENDING_TTL_S, Settler
from charter.engine.stateful import (
    Contribution,
    Specialised,
    depth_trips,
    plan_batch,
    read_result,
    release,
)
from charter.engine.view import View, stop_keys
from charter.enums import HitKind, Mode, Outcome, Scope, TriggerKind
from charter.state import StateStore, StopRecord, StoreError

#: a ruling's list that is still empty (never appended to: see Ruling.add)
_NONE: Any = ()


class Ruling:
    """The decision being made: the verdict's outcome combined with what the state said.

    The one combining rule, applied as contributions arrive: the strictest outcome wins, and the
    deciding list holds every contribution equal to it (ids unique). ``final``: nothing more is
    done for it (no human record, no stops set, nothing kept for settling): a stop covered the
    request, the store failed, or the idempotency key was used by another request.
    """

    __slots__ = (
        "approvals",
        "boundaries",
        "deciding",
        "default_deny",
        "failures",
        "final",
        "hold_id",
        "outcome",
        "paths",
        "pending",
        "recorded",
        "redeem",
        "replayed",
        "request_digest",
        "shadow",
        "stops",
    )

    def __init__(self, verdict: Verdict):
        self.outcome = verdict.outcome
        self.deciding: list[RuleHit] = list(verdict.deciding)
        self.default_deny = verdict.default_deny
        self.shadow = verdict.shadow
        self.failures: list[Failure] = list(verdict.failures)
        self.boundaries: list[BoundaryCheck] = []
        #: the deciding human gates of the rules (their obligations)
        self.approvals = verdict.approvals
        #: escalation paths of the contributions equal to the outcome (the first one is taken)
        # (usually there are none: then both are a shared empty tuple, replaced by a list on
        # the first append, so a ruling builds no list that stays empty)
        self.paths: list[EscalationPath | None] = (
            [r.escalation for r in verdict.escalations] if verdict.escalations else _NONE
        )
        #: what a halt stops: (scope, the rule or boundary that halted)
        self.stops: list[tuple[Scope | None, Any]] = (
            [(r.stop_scope, r) for r in verdict.halts if r.stop_scope] if verdict.halts else _NONE
        )
        self.hold_id: str | None = None
        #: the batch wrote the decision's settlement record
        self.recorded = False
        self.redeem: tuple[HitKind, str] | None = None
        self.pending: HumanRecord | None = None
        self.final = False
        #: a decision replayed for a retried request (its payload as stored)
        self.replayed: dict[str, Any] | None = None
        self.request_digest = ""

    def add(
        self, eff: Outcome, hit: RuleHit, path: EscalationPath | None, stop: Scope | None, item: Any
    ) -> None:
        """One more contribution."""
        if eff.rank > self.outcome.rank or (self.default_deny and eff.rank >= self.outcome.rank):
            self.outcome, self.deciding, self.default_deny = eff, [hit], False
            self.paths = [path]
        elif eff is self.outcome:
            if all(h.id != hit.id for h in self.deciding):
                self.deciding.append(hit)
            if self.paths:
                self.paths.append(path)
            else:  # the shared empty tuple (or an empty list)
                self.paths = [path]
        if eff is Outcome.HALT and item is not None:
            self._stop((stop, item))

    def contribute(self, c: Contribution, stop: tuple[Scope, Any] | None) -> None:
        """An exceeded boundary's contribution, and the stop its halt sets (or None)."""
        self.add(c.outcome, c.hit, c.path, None, None)
        if stop is not None:
            self._stop(stop)

    def _stop(self, stop: tuple[Scope | None, Any]) -> None:
        if self.stops:
            self.stops.append(stop)
        else:  # the shared empty tuple (or an empty list)
            self.stops = [stop]

    def add_errors(self, errors: list[tuple[Any, Outcome, str]]) -> None:
        """Boundaries whose conditions failed contribute their failure mode."""
        for item, took, msg in errors:
            source = str(item.source) if item.source else None
            self.add(
                took, RuleHit(item.id, item.kind, took, item.reason, source, False, msg), None, None, None
            )

    def end(self, outcome: Outcome, hit: RuleHit) -> Ruling:
        """A final outcome decided by one hit (a stop, a store failure, a refused key)."""
        self.outcome, self.deciding, self.default_deny, self.final = outcome, [hit], False, True
        return self


def _failed(ruling: Ruling, message: str) -> Ruling:
    """The store could not be consulted: deny (fail closed)."""
    ruling.failures.append(Failure("state store", message, "deny"))
    ruling.shadow = ()
    ruling.boundaries = []
    reason = "The state store could not be consulted, so the action is denied (fail closed)."
    return ruling.end(Outcome.DENY, RuleHit(FAIL_CLOSED, HitKind.FAILURE, Outcome.DENY, reason))


def _halted(ruling: Ruling, s: StopRecord) -> Ruling:
    """A decision under an emergency stop: halt, whatever the rules said (halt absorbs)."""
    hit = RuleHit(
        f"stop:{s.scope}:{s.value}",
        HitKind.STOP,
        Outcome.HALT,
        f"Emergency stop on {s.scope} {s.value} by {s.by}: {s.reason}",
    )
    ruling.boundaries.append(
        BoundaryCheck(HitKind.STOP, f"{s.scope}:{s.value}", False, scope=s.scope, detail=s.reason)
    )
    return ruling.end(Outcome.HALT, hit)


def grant_refused(ruling: Ruling) -> Ruling:
    """A grant the decision relied on was used up or revoked meanwhile: deny (nothing was written)."""
    reason = "a run grant this action relied on has no use left (used up or revoked meanwhile)"
    return ruling.end(Outcome.DENY, RuleHit("grant", HitKind.GRANT, Outcome.DENY, reason))


def conflict(ruling: Ruling, key: str) -> Ruling:
    """The idempotency key was first used for another request: refused, the first one is untouched."""
    reason = (
        f"The idempotency key {key!r} was first used for a different request; a key names one request "
        "(use a new key for a new request)."
    )
    return ruling.end(Outcome.DENY, RuleHit(f"idempotency:{key}", HitKind.IDEMPOTENCY, Outcome.DENY, reason))


class StatefulStep:
    """Consults the store once per decision (one atomic batch) and combines what it says with the
    verdict: stops (halt absorbs), a resubmitted human answer, delegation depth, tripwire counters,
    rates, budget reservations, the run's event, an idempotent replay."""

    def __init__(self, policy: CompiledPolicy, store: StateStore, gates: HumanGates, settler: Settler):
        self.policy = policy
        self.store = store
        self.gates = gates
        self.settler = settler
        self.depth_trips = any(t.trigger is TriggerKind.DEPTH for t in policy.tripwires)
        self.pend_always = bool(policy.result_checks) or settler.velocity
        #: the policy declares grant kinds (a policy without pays nothing for them)
        self.grants = bool(policy.grant_kinds)
        #: the tripwires, rates and budgets specialised once, selected once per request shape
        self.boundaries = Specialised(policy)

    def rule(self, did: str, view: View, verdict: Verdict, observer: Observer | None) -> Ruling:
        """The ruling of this request: the verdict and everything the store says."""
        req = view.req
        ruling = Ruling(verdict)
        if req.idempotency_key:
            ruling.request_digest = req.digest()
        if req.approval:
            answer = self.gates.resubmission(req, ruling.outcome, verdict.deciding)
            if answer.outcome is not ruling.outcome or answer.redeem is not None:
                ruling.outcome, ruling.deciding, ruling.default_deny = (
                    answer.outcome,
                    list(answer.deciding),
                    False,
                )
            ruling.redeem, ruling.pending = answer.redeem, answer.pending
        if self.depth_trips and req.chain:
            self._depth(view, ruling, observer)
        sel = self.boundaries.select(view)
        if req.chain or req.run or req.tenant:
            keys = stop_keys(view)
        else:
            # the stop keys of a request without a chain, run or tenant depend only on what
            # selects its boundaries (agent and ancestors, workflow, target, roles): kept there
            kept = sel.stop_keys
            keys = kept if kept is not None else stop_keys(view)
            if kept is None:
                sel.stop_keys = keys
        # the settlement record rides in the batch (one store call); not when an answer is
        # redeemed after it, which can still turn the decision down
        settler = self.settler
        pend = PENDING_TTL_S if settler.shared and not req.approval else None
        policy = self.policy
        plan = plan_batch(
            sel,
            policy,
            view,
            ruling.outcome is Outcome.ALLOW,
            keys,
            did,
            pend,
            self.pend_always,
            pend is not None and settler.by_hold(req),  # (only a batch with a record asks)
            observer,
            ruling.request_digest,
            ruling.outcome is Outcome.DENY,
        )
        if plan.failures:
            ruling.failures.extend(plan.failures)
        if plan.errors:
            ruling.add_errors(plan.errors)
            if ruling.outcome is not Outcome.ALLOW:
                # a boundary that failed closed: count tripwires, but reserve nothing
                plan = plan_batch(
                    sel,
                    policy,
                    view,
                    False,
                    keys,
                    did,
                    request_digest=ruling.request_digest,
                    denied=ruling.outcome is Outcome.DENY,
                )
        run = view.run if self.grants else None
        table = run.table if run is not None else None
        if table is not None:
            for where, message in table.failures:
                ruling.failures.append(Failure(where, message, "not covered"))
            if ruling.outcome is Outcome.ALLOW:
                # its own op in the batch: one use of each covering grant, iff the batch goes through
                plan.batch.grant_use = table.use_op()
        try:
            res = self.store.apply(plan.batch)
        except StoreError as exc:
            return _failed(ruling, f"state store: {exc}")
        if res.stop is not None:
            return _halted(ruling, res.stop)
        if res.replayed_payload is not None:
            return self._replay(ruling, res.replayed_payload, req.idempotency_key or "")
        if self.grants:
            if res.grant_refused:
                return grant_refused(ruling)
            for g in res.grant_uses:
                ruling.boundaries.append(
                    BoundaryCheck(HitKind.GRANT, g.id, True, used=g.used, limit=g.limit, detail=g.kind)
                )
        ruling.recorded = res.recorded
        read_result(plan, res, ruling)
        reserve = plan.batch.reserve
        held = res.reserve
        if held is not None and held.ok and reserve is not None:
            if ruling.outcome is Outcome.ALLOW:
                ruling.hold_id = reserve.hold_id
            else:  # a stricter outcome arrived after the reservation: give the money back
                release(self.store, reserve.hold_id, view.now, ruling.failures)
        if ruling.redeem is not None and ruling.outcome is Outcome.ALLOW:
            refused = self.gates.redeem(ruling.redeem, did, ruling.failures)
            if refused is not None:
                if ruling.hold_id:
                    release(self.store, ruling.hold_id, view.now, ruling.failures)
                    ruling.hold_id = None
                ruling.outcome, ruling.deciding, ruling.default_deny = Outcome.DENY, [refused], False
        return ruling

    def _depth(self, view: View, ruling: Ruling, observer: Observer | None) -> None:
        """Delegation-depth tripwires (they need no state)."""
        errors: list[tuple[Any, Outcome, str]] = []
        for tw in depth_trips(self.policy, view, errors, ruling.failures, observer):
            enforce = tw.mode is Mode.ENFORCE
            ruling.boundaries.append(
                BoundaryCheck(
                    HitKind.TRIPWIRE,
                    tw.id,
                    not enforce,
                    used=float(len(view.chain)),
                    limit=tw.threshold,
                    detail="delegation-depth",
                )
            )
            if enforce:
                source = str(tw.source) if tw.source else None
                hit = RuleHit(tw.id, HitKind.TRIPWIRE, tw.outcome, tw.reason, source)
                ruling.add(tw.outcome, hit, tw.escalation, tw.stop_scope, tw)
        ruling.add_errors(errors)

    @staticmethod
    def _replay(ruling: Ruling, payload: str, key: str) -> Ruling:
        """A retried request: the decision made for it, if it is the same request; else refused."""
        try:
            stored = json.loads(payload)
        except ValueError:
            stored = None
        if not isinstance(stored, dict) or stored.get("digest") != ruling.request_digest:
            return conflict(ruling, key)
        ruling.replayed = stored["decision"]
        ruling.final = True
        return ruling
