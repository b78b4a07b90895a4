"""What the engine returns: the decision, its deciding rules, boundaries checked and obligations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from charter.enums import HitKind, Outcome


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that matched (or failed) with the effect it contributed."""

    id: str
    kind: HitKind
    effect: Outcome
    reason: str
    source: str | None = None
    shadow: bool = False
    error: str | None = None

    @classmethod
    def from_dict(cls, r: Mapping[str, Any]) -> RuleHit:
        """The inverse of :meth:`to_dict` (replayed decisions, the sidecar client)."""
        return cls(
            r["id"],
            HitKind(r["kind"]),
            Outcome(r["effect"]),
            r["reason"],
            r.get("source"),
            r.get("shadow", False),
            r.get("error"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d: dict[str, Any] = {
            "id": self.id,
            "kind": str(self.kind),
            "effect": self.effect.value,
            "reason": self.reason,
        }
        if self.source:
            d["source"] = self.source
        if self.shadow:
            d["shadow"] = True
        if self.error:
            d["error"] = self.error
        return d


@dataclass(slots=True)
class BoundaryCheck:
    """A stateful boundary the decision consulted, with the values seen (a value: read it, do
    not change it; not ``frozen`` because a stateful decision builds one per boundary on its hot
    path, and a frozen dataclass costs ~5x as much to build)."""

    kind: HitKind  # budget | rate | tripwire | stop
    id: str
    ok: bool
    scope: str | None = None
    key: str | None = None
    unit: str | None = None
    used: float | None = None
    reserved: float | None = None
    amount: float | None = None
    limit: float | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (fields that do not apply are left out)."""
        out = {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}
        out["kind"] = str(self.kind)
        return out


@dataclass(frozen=True, slots=True)
class Failure:
    """An evaluation or state failure and the fail mode taken."""

    where: str
    error: str
    took: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"where": self.where, "error": self.error, "took": self.took}


@dataclass(slots=True)
class Decision:
    """A decision: outcome, deciding rules and reasons, boundaries, obligations, revision, timing."""

    id: str
    outcome: Outcome
    rules: tuple[RuleHit, ...]
    revision: str
    boundaries: tuple[BoundaryCheck, ...] = ()
    shadow: tuple[RuleHit, ...] = ()
    failures: tuple[Failure, ...] = ()
    obligations: dict[str, Any] = field(default_factory=dict)
    elapsed_us: float = 0.0
    default_deny: bool = False
    hold_id: str | None = None
    replayed: bool = False
    #: values of the CEL sub-expressions of the deciding rules (filled when tracing)
    evidence: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        """True only for ``allow``."""
        return self.outcome is Outcome.ALLOW

    @property
    def reasons(self) -> list[str]:
        """Human-readable reasons of the deciding rules."""
        return [r.reason for r in self.rules if r.reason]

    def to_dict(self) -> dict[str, Any]:
        """The decision as JSON-ready data with stable field names (schema in docs/)."""
        out = {
            "schema_version": 1,
            "id": self.id,
            "outcome": self.outcome.value,
            "rules": [r.to_dict() for r in self.rules],
            "default_deny": self.default_deny,
            "boundaries": [b.to_dict() for b in self.boundaries],
            "shadow": [r.to_dict() for r in self.shadow],
            "failures": [f.to_dict() for f in self.failures],
            "obligations": self.obligations,
            "revision": self.revision,
            "elapsed_us": round(self.elapsed_us, 2),
            "hold_id": self.hold_id,
            "replayed": self.replayed,
            "evidence": {k: [[t, v] for t, v in vals] for k, vals in self.evidence.items()},
        }
        return out


@dataclass(slots=True)
class GrantedDecision(Decision):
    """A decision that consulted run grants (a subclass, so other decisions carry no extra field)."""

    #: the run grant instances ``granted()`` consulted: id, kind, covers, uses_left
    grants: tuple[dict[str, Any], ...] = ()

    @staticmethod
    def of(d: Decision, grants: tuple[dict[str, Any], ...]) -> GrantedDecision:
        """``d`` with the grants it consulted."""
        fields = {name: getattr(d, name) for name in Decision.__dataclass_fields__}
        return GrantedDecision(**fields, grants=grants)

    def to_dict(self) -> dict[str, Any]:
        """The decision's JSON form with ``grants`` (additive to schema version 1)."""
        out = Decision.to_dict(self)
        out["grants"] = [dict(g) for g in self.grants]
        return out


class RuleHitModel(BaseModel):
    """Wire form of a rule hit."""

    id: str
    kind: str
    effect: Outcome
    reason: str
    source: str | None = None
    shadow: bool = False
    error: str | None = None


class BoundaryModel(BaseModel):
    """Wire form of a boundary check."""

    kind: str
    id: str
    ok: bool
    scope: str | None = None
    key: str | None = None
    unit: str | None = None
    used: float | None = None
    reserved: float | None = None
    amount: float | None = None
    limit: float | None = None
    detail: str | None = None


class FailureModel(BaseModel):
    """Wire form of a failure record."""

    where: str
    error: str
    took: str


class GrantUseModel(BaseModel):
    """Wire form of a run grant instance a decision consulted."""

    id: str
    kind: str
    covers: bool
    uses_left: int | None = None


class DecisionModel(BaseModel):
    """JSON Schema of a decision as returned by ``Decision.to_dict`` and the sidecar."""

    schema_version: int = 1
    id: str
    outcome: Outcome
    rules: list[RuleHitModel]
    default_deny: bool
    boundaries: list[BoundaryModel]
    shadow: list[RuleHitModel]
    failures: list[FailureModel]
    obligations: dict[str, Any] = Field(
        description="approvals (group, quorum, members, expiry), escalation (target, chain), stop"
    )
    revision: str
    elapsed_us: float
    hold_id: str | None = None
    replayed: bool = False
    grants: list[GrantUseModel] = Field(
        default_factory=list,
        description="run grant instances granted() consulted (absent when none): id, kind, covers, uses_left",
    )
