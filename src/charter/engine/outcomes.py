"""How a decision ends: halted by a stop, failed closed, replayed, a gate opened, the Decision built."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from charter.approvals.digest import action_digest
from charter.engine.decision import BoundaryCheck, Decision, Failure, RuleHit
from charter.engine.evaluate import View
from charter.engine.policy import Rule
from charter.engine.req import Req
from charter.engine.settling import Settling
from charter.enums import Outcome
from charter.state import StopRecord, StoreError

#: decision ids count up from here: ``hex(ID_BASE + n)[3:]`` is n in 12 hex digits
ID_BASE = 1 << 48


def _plain(value: Any) -> Any:
    """A CEL value as plain JSON (errors become their message)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    msg = getattr(value, "message", None)
    if msg is not None:
        return f"error: {msg}"
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


class Outcomes(Settling):
    """The ending half of :class:`charter.Engine` (a mixin: the engine owns the state it reads)."""

    approvals: Any
    escalations: Any
    _ids: Any
    _id_prefix: str
    _rules: dict[str, Rule]

    def _new_id(self) -> str:
        return self._id_prefix + hex(next(self._ids))[3:]  # hex(): half the cost of an f-string

    def _halted(
        self,
        did: str,
        req: Req,
        t0: float,
        s: StopRecord,
        boundaries: list[BoundaryCheck],
        shadow: list[RuleHit],
        failures: list[Failure],
    ) -> Decision:
        """A decision under an emergency stop: halt, whatever the rules said (halt absorbs)."""
        hit = RuleHit(
            f"stop:{s.scope}:{s.value}",
            "stop",
            Outcome.HALT,
            f"Emergency stop on {s.scope} {s.value} by {s.by}: {s.reason}",
        )
        boundaries.append(
            BoundaryCheck("stop", f"{s.scope}:{s.value}", False, scope=s.scope, detail=s.reason)
        )
        return self._finish(
            did, req, Outcome.HALT, [hit], t0, boundaries=boundaries, shadow=shadow, failures=failures
        )

    def _evidence(self, deciding: list[RuleHit], view: View) -> dict[str, list[tuple[str, Any]]]:
        """The values of each deciding rule's condition parts (for the trace's 'why')."""
        out: dict[str, list[tuple[str, Any]]] = {}
        for hit in deciding:
            rule = self._rules.get(hit.id)
            if rule is None or not rule.conditions:
                continue
            act = view.activation()
            vals: list[tuple[str, Any]] = []
            for cond in rule.conditions:
                pairs = cond.explain(act) if cond.explain is not None else [(cond.text, cond.fn(act))]
                for text, value in pairs:
                    vals.append((("unless " if cond.negate else "") + text, _plain(value)))
            out[hit.id] = vals
        return out

    def _resubmission(
        self, req: Req, outcome: Outcome, deciding: list[RuleHit]
    ) -> tuple[Outcome, list[RuleHit], tuple[str, str] | None, str | None]:
        """An action resubmitted with an approval or escalation id: is the human answer usable?

        Returns (outcome, deciding, what to redeem if allowed, pending approval id).
        INVARIANT: the answer only stands in for the human gate it was given for; every other
        boundary (stops, budgets, tripwires, rules that deny) is evaluated again.
        """
        from charter.approvals import action_digest

        aid = req.approval or ""
        kind = "escalation" if aid.startswith("es-") else "approval"
        service = self.escalations if kind == "escalation" else self.approvals
        try:
            status, doc, message = service.check(aid, action_digest(req))
        except StoreError as exc:
            return (
                Outcome.DENY,
                [
                    RuleHit(
                        "charter.fail-closed",
                        "failure",
                        Outcome.DENY,
                        f"The {kind} could not be read ({exc}); denied (fail closed).",
                    )
                ],
                None,
                None,
            )
        needs = Outcome.REQUIRE_APPROVAL if kind == "approval" else Outcome.ESCALATE
        hit_id = f"{kind}:{aid}"
        if status in ("approved", "allowed"):
            if outcome is needs:
                who = ", ".join(a["by"] for a in (doc or {}).get("approvals", (doc or {}).get("answers", [])))
                return (
                    Outcome.ALLOW,
                    [RuleHit(hit_id, kind, Outcome.ALLOW, f"{message} by {who}")],
                    (kind, aid),
                    None,
                )
            if outcome is Outcome.ALLOW:
                return outcome, deciding, (kind, aid), None
            return outcome, deciding, None, None
        if status == "pending" and outcome is needs:
            return outcome, deciding, None, aid
        if status == "open" and outcome is needs:
            return outcome, deciding, None, aid
        if status in ("expired", "fallback"):
            took = Outcome((doc or {}).get("outcome", "deny"))
            if took.rank < Outcome.DENY.rank:
                took = Outcome.DENY if took is Outcome.ALLOW else took
            return (
                (took if took.rank > outcome.rank else outcome),
                [RuleHit(hit_id, kind, took, message)],
                None,
                None,
            )
        worst = Outcome.DENY if outcome.rank < Outcome.DENY.rank else outcome
        return (
            worst,
            [RuleHit(hit_id, kind, Outcome.DENY, message)] if worst is Outcome.DENY else deciding,
            None,
            None,
        )

    def _open_record(
        self,
        did: str,
        req: Req,
        outcome: Outcome,
        obligations: dict[str, Any],
        deciding: list[RuleHit],
        pending_id: str | None,
    ) -> None:
        """Open the approval request or escalation a decision calls for (or point at the pending one)."""
        summary = {
            "agent": req.actor_id,
            "kind": req.kind._value_,
            "target": req.target,
            "args": dict(req.args),
            "workflow": req.workflow,
            "run": req.run,
        }
        tool = self.policy.tools.get(req.target)
        if tool is not None and tool.secret_args:
            summary["args"] = {k: ("[secret]" if k in tool.secret_args else v) for k, v in req.args.items()}
        if outcome is Outcome.REQUIRE_APPROVAL and obligations.get("approvals"):
            if pending_id:
                obligations["approval_id"] = pending_id
                return
            doc = self.approvals.open(
                decision_id=did,
                digest=action_digest(req),
                requester=req.actor_id,
                chain=req.chain,
                human=req.human,
                gates=obligations["approvals"],
                revision=self.policy.revision,
                summary=summary,
            )
            obligations["approval_id"] = doc["id"]
            obligations["approval_expires_at"] = doc["expires_at"]
        elif outcome is Outcome.ESCALATE and obligations.get("escalation"):
            if pending_id:
                obligations["escalation"]["id"] = pending_id
                return
            doc = self.escalations.open(
                decision_id=did,
                digest=action_digest(req),
                requester=req.actor_id,
                obligation=obligations["escalation"],
                reasons=[h.reason for h in deciding],
                revision=self.policy.revision,
                summary=summary,
            )
            obligations["escalation"]["id"] = doc["id"]

    def _finish(
        self,
        did: str,
        req: Req,
        outcome: Outcome,
        deciding: list[RuleHit],
        t0: float,
        boundaries: list[BoundaryCheck] | tuple[()] = (),
        shadow: list[RuleHit] | tuple[()] = (),
        failures: list[Failure] | tuple[()] = (),
        obligations: dict[str, Any] | None = None,
        default_deny: bool = False,
        hold_id: str | None = None,
        evidence: dict[str, list[tuple[str, Any]]] | None = None,
    ) -> Decision:
        d = Decision(
            did,
            outcome,
            tuple(deciding),
            self.policy.revision,
            tuple(boundaries),
            tuple(shadow),
            tuple(failures),
            obligations if obligations is not None else {},
            0.0,
            default_deny,
            hold_id,
            False,
            evidence if evidence is not None else {},
        )
        d.elapsed_us = (time.perf_counter() - t0) * 1e6
        if self.trace is not None:
            try:
                self.trace.record_decision(d, req)
            except Exception as exc:
                if d.outcome is Outcome.ALLOW or d.outcome.rank < Outcome.DENY.rank:
                    if d.hold_id:
                        self._release(d.hold_id, time.time(), [])
                    d = Decision(
                        did,
                        Outcome.DENY,
                        (),
                        self.policy.revision,
                        d.boundaries,
                        d.shadow,
                        (*d.failures, Failure("trace", str(exc), "deny")),
                    )
                    d.elapsed_us = (time.perf_counter() - t0) * 1e6
        if req.idempotency_key:
            # a failure leaves the decision standing; a retry may be decided again, still fail-closed
            with contextlib.suppress(StoreError):
                self.store.remember(
                    req.idempotency_key, json.dumps(d.to_dict()), now=self.clock(), ttl_s=86400.0
                )
        return d

    def _failed(self, did: str, req: Req, t0: float, msg: str, failures: list[Failure]) -> Decision:
        failures = [*failures, Failure("state store", msg, "deny")]
        hit = RuleHit(
            "charter.fail-closed",
            "failure",
            Outcome.DENY,
            "The state store could not be consulted, so the action is denied (fail closed).",
        )
        return self._finish(did, req, Outcome.DENY, [hit], t0, failures=failures)

    def _replayed(self, payload: str) -> Decision:
        d = json.loads(payload)
        return Decision(
            d["id"],
            Outcome(d["outcome"]),
            tuple(RuleHit.from_dict(r) for r in d["rules"]),
            d["revision"],
            tuple(BoundaryCheck(**b) for b in d["boundaries"]),
            (),
            tuple(Failure(**f) for f in d["failures"]),
            d["obligations"],
            d["elapsed_us"],
            d["default_deny"],
            d.get("hold_id"),
            True,
        )
