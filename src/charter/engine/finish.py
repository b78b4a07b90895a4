"""The last step of deciding: the one DecisionBuilder, and the evidence a traced decision carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from time import perf_counter
from typing import Any

from charter.cel.provenance import PROVENANCE
from charter.engine.decision import BoundaryCheck, Decision, Failure, GrantedDecision, RuleHit
from charter.engine.evaluate import Verdict
from charter.engine.policy import Rule
from charter.engine.view import View
from charter.enums import HitKind, Outcome

_new = object.__new__


class DecisionBuilder:
    """Builds every :class:`Decision` an engine returns: decided now, or replayed for a retry.

    INVARIANT: the only place the engine makes a Decision (tests/unit/test_architecture.py).
    """

    __slots__ = ("revision",)

    def __init__(self, revision: str):
        self.revision = revision

    def build(
        self,
        did: str,
        outcome: Outcome,
        rules: tuple[RuleHit, ...],
        boundaries: tuple[BoundaryCheck, ...],
        shadow: tuple[RuleHit, ...],
        failures: tuple[Failure, ...],
        obligations: dict[str, Any],
        default_deny: bool,
        hold_id: str | None,
        evidence: dict[str, list[tuple[str, Any]]] | None,
        t0: float,
        grants: tuple[dict[str, Any], ...] = (),
    ) -> Decision:
        """A decision made now (``t0``: when deciding started, for ``elapsed_us``); one that
        consulted run ``grants`` is a :class:`GrantedDecision` naming them."""
        d: Decision
        if grants:
            d = g = _new(GrantedDecision)
            g.grants = grants
        else:
            d = _new(Decision)  # every field set below (a dataclass __init__ costs twice as much)
        d.id = did
        d.outcome = outcome
        d.rules = rules
        d.revision = self.revision
        d.boundaries = boundaries
        d.shadow = shadow
        d.failures = failures
        d.obligations = obligations
        d.default_deny = default_deny
        d.hold_id = hold_id
        d.replayed = False
        d.evidence = evidence if evidence is not None else {}
        d.elapsed_us = (perf_counter() - t0) * 1e6
        return d

    def verdict(self, did: str, verdict: Verdict, t0: float) -> Decision:
        """The decision of an allow or deny verdict no state changed and no trace records:
        :meth:`build` with the verdict's parts, no boundaries, obligations, hold or evidence."""
        d: Decision = _new(Decision)
        d.id = did
        d.outcome = verdict.outcome
        d.rules = verdict.deciding
        d.revision = self.revision
        d.boundaries = ()
        d.shadow = verdict.shadow
        d.failures = verdict.failures
        d.obligations = {}
        d.default_deny = verdict.default_deny
        d.hold_id = None
        d.replayed = False
        d.evidence = {}
        d.elapsed_us = (perf_counter() - t0) * 1e6
        return d

    @staticmethod
    def replayed(d: Mapping[str, Any]) -> Decision:
        """The decision remembered for a retried request (``Decision.to_dict`` form), marked replayed."""
        return Decision(
            d["id"],
            Outcome(d["outcome"]),
            tuple(RuleHit.from_dict(r) for r in d["rules"]),
            d["revision"],
            tuple(BoundaryCheck(**{**b, "kind": HitKind(b["kind"])}) for b in d["boundaries"]),
            (),
            tuple(Failure(**f) for f in d["failures"]),
            d["obligations"],
            d["elapsed_us"],
            d["default_deny"],
            d.get("hold_id"),
            True,
        )


def evidence(
    deciding: Sequence[RuleHit], view: View, rules: Mapping[str, Rule]
) -> dict[str, list[tuple[str, Any]]]:
    """The values of each deciding rule's condition parts (the trace's "why")."""
    out: dict[str, list[tuple[str, Any]]] = {}
    detail = view.run.detail if view.run is not None else None
    matched = detail.matched if detail is not None else None
    for hit in deciding:
        rule = rules.get(hit.id)
        if rule is None or not (rule.conditions or (matched and rule.sequences)):
            continue
        act = view.activation()
        vals: list[tuple[str, Any]] = []
        for cond in rule.conditions:
            pairs = cond.explain(act) if cond.explain is not None else [(cond.text, cond.fn(act))]
            for text, value in pairs:
                vals.append((("unless " if cond.negate else "") + text, _plain(value)))
        if any(PROVENANCE in c.references for c in rule.conditions):
            vals.extend(_provenance_read(rule, view, act))
        if matched:
            # the entry a where clause matched: its call, tool and step (never its values,
            # which may be secret)
            for seq in rule.sequences:
                if seq.where is not None and seq.where.text in matched:
                    vals.append((f"earlier where {seq.where.text}", matched[seq.where.text]))
        if vals:
            out[hit.id] = vals
    return out


def _provenance_read(rule: Rule, view: View, act: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """What a rule that reads ``labels()`` / ``sources()`` rested on: the labels and sources of
    each argument its conditions name (per element for a list), and the earlier calls they
    named (their tool and result labels, or ``unknown``)."""
    table = act.get(PROVENANCE)
    if table is None:
        return [("provenance", "none given")]
    names = sorted(
        {r.split(".")[1] for c in rule.conditions for r in c.references if r.startswith("args.") and "." in r}
    )
    out: list[tuple[str, Any]] = []
    for name in names:
        if name in view.args:
            try:
                out.append((f"provenance of args.{name}", table.describe(view.args[name])))
            except Exception as exc:  # a store fault: the rule already failed closed
                out.append((f"provenance of args.{name}", f"error: {exc}"))
    out.append(("provenance calls", table.read()))
    return out


def _plain(value: Any) -> Any:
    """A CEL value as plain JSON (errors become their message)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    msg = getattr(value, "message", None)
    if msg is not None:
        return f"error: {msg}"
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)
