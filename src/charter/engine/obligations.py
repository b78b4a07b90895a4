"""Obligations: what a caller must do before (or instead of) acting, typed, built in one place.

A decision's ``obligations`` is the JSON form of one :class:`Obligations` value. Adding an
obligation: a typed field here, its JSON in :meth:`Obligations.to_dict`, and the one line of
``Engine._obligations`` that computes it (docs/architecture.md, "Adding an obligation").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from charter.engine.decision import RuleHit
from charter.engine.policy import EscalationPath, Rule
from charter.enums import Outcome
from charter.state import StopRecord


@dataclass(frozen=True, slots=True)
class ApprovalGate:
    """One human gate a ``require approval`` rule sets: who, how many, for how long."""

    rule: str
    group: str
    quorum: int
    members: tuple[str, ...]
    separation_of_duties: bool
    expires_in_s: float
    on_timeout: Outcome
    #: how long a granted approval stays usable (``redeem within``)
    redeem_within_s: float

    @classmethod
    def of(cls, rule: Rule) -> ApprovalGate:
        """The gate of a deciding ``require approval`` rule."""
        gate = rule.approval
        assert gate is not None  # INVARIANT: only rules of kind APPROVAL are given
        return cls(
            rule.id,
            gate.group,
            gate.quorum,
            gate.members,
            gate.separation_of_duties,
            gate.expires_seconds,
            gate.on_timeout,
            gate.redeem_seconds,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "rule": self.rule,
            "group": self.group,
            "quorum": self.quorum,
            "members": list(self.members),
            "separation_of_duties": self.separation_of_duties,
            "expires_in_s": self.expires_in_s,
            "on_timeout": self.on_timeout._value_,
            "redeem_within_s": self.redeem_within_s,
        }


@dataclass(frozen=True, slots=True)
class Escalation:
    """Where an escalation goes: its first target, the chain, the fallback, the rules that sent it."""

    target: str | None
    chain: tuple[tuple[str, float | None], ...]
    fallback: Outcome
    severity: str | None
    rules: tuple[str, ...]
    signals: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def of(
        cls, path: EscalationPath | None, deciding: Sequence[RuleHit], signals: Sequence[Mapping[str, Any]]
    ) -> Escalation:
        """The escalation of a decision: the first deciding path (none: deny when nobody answers)."""
        rules = tuple(h.id for h in deciding)
        if path is None:
            return cls(None, (), Outcome.DENY, None, rules, tuple(signals))
        first = path.steps[0] if path.steps else None
        return cls(
            first.target if first else path.name,
            tuple((s.target, s.timeout_seconds) for s in path.steps),
            path.fallback,
            path.severity,
            rules,
            tuple(signals),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {
            "target": self.target,
            "chain": [{"target": t, "timeout_s": s} for t, s in self.chain],
            "fallback": self.fallback._value_,
        }
        if self.severity is not None:
            out["severity"] = self.severity
        out["rules"] = list(self.rules)
        if self.signals:
            out["signals"] = [dict(s) for s in self.signals]
        return out


@dataclass(frozen=True, slots=True)
class HumanRecord:
    """The approval request or escalation a decision opened (or the pending one it points at)."""

    id: str
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class Obligations:
    """Everything a decision obliges its caller to: human gates, an escalation, stops that were set."""

    approvals: tuple[ApprovalGate, ...] = ()
    escalation: Escalation | None = None
    #: the human record (approval request or escalation) the caller resubmits with
    record: HumanRecord | None = None
    stops: tuple[StopRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The decision's ``obligations`` (docs/schema/decision.schema.json)."""
        out: dict[str, Any] = {}
        record = self.record
        if self.approvals:
            out["approvals"] = [g.to_dict() for g in self.approvals]
            if record is not None:
                out["approval_id"] = record.id
                if record.expires_at is not None:
                    out["approval_expires_at"] = record.expires_at
        if self.escalation is not None:
            out["escalation"] = esc = self.escalation.to_dict()
            if record is not None:
                esc["id"] = record.id
        if self.stops:
            out["stops"] = [s.to_dict() for s in self.stops]
        return out


NONE = Obligations()
