"""Human gates in the pipeline: a resubmitted answer checked and redeemed, a request for a human opened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from charter.approvals.digest import action_digest
from charter.engine.decision import Failure, RuleHit
from charter.engine.obligations import ApprovalGate, Escalation, HumanRecord
from charter.engine.policy import CompiledPolicy
from charter.engine.validate import ValidRequest
from charter.enums import HitKind, Outcome
from charter.state import StoreError

#: The deciding hit of a decision that failed closed because a store could not be used.
FAIL_CLOSED = "charter.fail-closed"


@dataclass(slots=True)
class Resubmission:
    """What a resubmitted human answer does to a decision (see :meth:`HumanGates.resubmission`)."""

    outcome: Outcome
    deciding: tuple[RuleHit, ...]
    #: the answer to use once if the action stays allowed: (approval | escalation, id)
    redeem: tuple[HitKind, str] | None = None
    #: the answer is still pending: point the caller at it instead of opening another
    pending: HumanRecord | None = None


class HumanGates:
    """The engine's side of approvals and escalations: it checks, opens and redeems records
    through the approval and escalation services (``engine.approvals``, ``engine.escalations``)."""

    def __init__(self, policy: CompiledPolicy, approvals: Any, escalations: Any):
        self.policy = policy
        self.approvals = approvals
        self.escalations = escalations

    def resubmission(
        self, req: ValidRequest, outcome: Outcome, deciding: tuple[RuleHit, ...]
    ) -> Resubmission:
        """An action resubmitted with an approval or escalation id: is the human answer usable?

        INVARIANT: the answer only stands in for the human gate it was given for; every other
        boundary (stops, budgets, tripwires, rules that deny) is evaluated again. It is bound to
        the request it was given for (``approvals/digest.py``): another cost, other arguments,
        labels or context make it unusable.
        """
        aid = req.approval or ""
        kind = HitKind.ESCALATION if aid.startswith("es-") else HitKind.APPROVAL
        service = self.escalations if kind is HitKind.ESCALATION else self.approvals
        try:
            status, doc, message = service.check(aid, action_digest(req))
        except StoreError as exc:
            reason = f"The {kind} could not be read ({exc}); denied (fail closed)."
            return Resubmission(Outcome.DENY, (RuleHit(FAIL_CLOSED, HitKind.FAILURE, Outcome.DENY, reason),))
        needs = Outcome.REQUIRE_APPROVAL if kind is HitKind.APPROVAL else Outcome.ESCALATE
        hit_id = f"{kind}:{aid}"
        if status in ("approved", "allowed"):
            if outcome is needs:
                doc = doc or {}
                who = ", ".join(a["by"] for a in doc.get("approvals", doc.get("answers", [])))
                hit = RuleHit(hit_id, kind, Outcome.ALLOW, f"{message} by {who}")
                return Resubmission(Outcome.ALLOW, (hit,), (kind, aid))
            if outcome is Outcome.ALLOW:
                return Resubmission(outcome, deciding, (kind, aid))
            return Resubmission(outcome, deciding)
        if status in ("pending", "open") and outcome is needs:
            return Resubmission(outcome, deciding, pending=HumanRecord(aid))
        if status in ("expired", "fallback"):
            took = Outcome((doc or {}).get("outcome", "deny"))
            if took.rank < Outcome.DENY.rank:
                took = Outcome.DENY if took is Outcome.ALLOW else took
            return Resubmission(
                took if took.rank > outcome.rank else outcome, (RuleHit(hit_id, kind, took, message),)
            )
        if outcome.rank < Outcome.DENY.rank:
            return Resubmission(Outcome.DENY, (RuleHit(hit_id, kind, Outcome.DENY, message),))
        return Resubmission(outcome, deciding)

    def open(
        self,
        did: str,
        req: ValidRequest,
        approvals: tuple[ApprovalGate, ...],
        escalation: Escalation | None,
        reasons: list[str],
    ) -> HumanRecord:
        """Open the approval request or the escalation a decision calls for (raises StoreError)."""
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
        if approvals:
            doc = self.approvals.open(
                decision_id=did,
                digest=action_digest(req),
                requester=req.actor_id,
                chain=req.chain,
                human=req.human,
                gates=[g.to_dict() for g in approvals],
                revision=self.policy.revision,
                summary=summary,
            )
            return HumanRecord(doc["id"], doc["expires_at"])
        assert escalation is not None  # INVARIANT: called for a gate or an escalation
        doc = self.escalations.open(
            decision_id=did,
            digest=action_digest(req),
            requester=req.actor_id,
            obligation=escalation.to_dict(),
            reasons=reasons,
            revision=self.policy.revision,
            summary=summary,
        )
        return HumanRecord(doc["id"])

    def redeem(self, answer: tuple[HitKind, str], did: str, failures: list[Failure]) -> RuleHit | None:
        """Use an answer for this decision; a hit that denies when it was used already (or unreadable)."""
        kind, aid = answer
        service = self.approvals if kind is HitKind.APPROVAL else self.escalations
        try:
            used = service.redeem(aid, did)
        except StoreError as exc:
            used = False
            failures.append(Failure("state store", f"redeem {aid}: {exc}", "deny"))
        if used:
            return None
        return RuleHit(
            f"{kind}:{aid}", kind, Outcome.DENY, f"The {kind} {aid} was already used; it allows one action."
        )


def not_recorded(outcome: Outcome, exc: Exception, failures: list[Failure]) -> RuleHit:
    """A request for a human that could not be stored: the action is denied (fail closed)."""
    failures.append(Failure("state store", f"open {outcome._value_}: {exc}", "deny"))
    reason = "The request for a human could not be recorded, so the action is denied (fail closed)."
    return RuleHit(FAIL_CLOSED, HitKind.FAILURE, Outcome.DENY, reason)
