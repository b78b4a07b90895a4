"""Coverage of a policy by tests: which rules fired, which condition operands were seen true and false."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from charter.cel.syntax import Logic
from charter.engine.boundaries import boundaries
from charter.engine.decision import Decision
from charter.engine.evaluate import ConditionError, Verdict, check_sequence, rule_holds
from charter.engine.observe import Observer
from charter.engine.policy import CompiledPolicy, Condition, Rule
from charter.engine.settle import Settlement
from charter.engine.validate import ValidRequest
from charter.engine.view import RunView, View

#: operand key: (owner id, operand label)
Operand = tuple[str, str]


@dataclass(slots=True)
class Item:
    """One coverable policy item (a rule, budget, rate, tripwire or result check)."""

    id: str
    kind: str
    source: str
    fired: bool = False
    operands: dict[str, set[bool]] = field(default_factory=dict)

    @property
    def branches(self) -> tuple[int, int]:
        """(operands seen both true and false, operands)."""
        both = sum(1 for seen in self.operands.values() if len(seen) == 2)
        return both, len(self.operands)


def _seq_label(seq: Any) -> str:
    return f"{'after' if seq.after else 'before'} {seq.text or seq.mark}"


def _prefix(cond: Condition, index: int) -> str:
    return f"{'unless' if cond.negate else 'when'}[{index}] "


def _operand_labels(cond: Condition, prefix: str) -> list[str]:
    """Labels of a condition's top-level &&/|| operands (the whole condition when it has none)."""
    compiled = getattr(cond.explain, "__self__", None)
    node = getattr(compiled, "_node", None)
    source = getattr(compiled, "source", cond.text)
    if isinstance(node, Logic):
        return [prefix + source[op.start : op.end] for op in node.operands]
    return [prefix + cond.text]


class Coverage(Observer):
    """Accumulates coverage for one compiled policy across many engines and decisions.

    An engine observer: give it to the engines whose decisions count
    (``Engine(policy, observers=[coverage])``). Thread-safe (one lock around recording).
    """

    def __init__(self, policy: CompiledPolicy):
        self.policy = policy
        self._lock = threading.Lock()
        self.items: dict[str, Item] = {}
        self._owners: dict[int, str] = {}
        items = [
            *((it.kind.value, it) for it in policy.rules),
            *((str(k.kind), it) for k, it in boundaries(policy)),
        ]
        for label, it in items:
            src = str(it.source) if it.source else ""
            item = Item(it.id, label, src)
            self.items[it.id] = item
            conds: Sequence[Condition] = getattr(it, "conditions", ())
            if conds:
                self._owners[id(conds)] = it.id
            for seq in getattr(it, "sequences", ()):
                item.operands.setdefault(_seq_label(seq), set())
            for sc in getattr(it, "signals", ()):
                item.operands.setdefault(f"signal {sc.kind}", set())
                if sc.where is not None:
                    for lab in _operand_labels(sc.where, f"signal {sc.kind} where "):
                        item.operands.setdefault(lab, set())
            for i, cond in enumerate(conds):
                for lab in _operand_labels(cond, _prefix(cond, i)):
                    item.operands.setdefault(lab, set())

    # ---- recording -----------------------------------------------------------------------------
    def _conditions(
        self, owner: str, conds: Sequence[Condition], act: Mapping[str, Any], tag: str | None = None
    ) -> None:
        item = self.items.get(owner)
        if item is None:
            return
        for i, cond in enumerate(conds):
            prefix = tag if tag is not None else _prefix(cond, i)
            pairs: list[tuple[str, Any]]
            try:
                pairs = cond.explain(act) if cond.explain is not None else [(cond.text, cond.fn(act))]
            except Exception:  # explaining must never break a test run
                continue
            parts = pairs[:-1] if len(pairs) > 1 else [(cond.text, pairs[-1][1])]
            for text, value in parts:
                if value is True or value is False:
                    item.operands.setdefault(f"{prefix}{text}", set()).add(bool(value))

    # ---- the observer ----------------------------------------------------------------------------
    def rules_evaluated(self, view: View, candidates: Sequence[Rule], verdict: Verdict) -> None:
        """Every selected rule's parts, evaluated against the decision's view."""
        with self._lock:
            self.record_rules(view, candidates)

    def conditions_evaluated(self, owner: Any, conditions: Sequence[Condition], view: View) -> None:
        """A boundary's or check's conditions."""
        with self._lock:
            self.record_conditions(conditions, view)

    def decision_finished(self, token: Any, request: ValidRequest, decision: Decision) -> None:
        """Boundaries that bit and rules that decided."""
        with self._lock:
            self.record_decision(decision)

    def settled(self, settlement: Settlement) -> None:
        """Checks after an action that held."""
        with self._lock:
            for c in settlement.checks:
                self.record_check(c.id)

    # ---- recording ---------------------------------------------------------------------------------
    def record_rules(self, view: View, candidates: Sequence[Rule]) -> None:
        """Evaluate every selected rule's parts against a decision's view."""
        if view.run is None:
            view = view.copy()
            view.run = RunView()  # coverage asks what each part gives, history or not
        act = view.activation()
        for rule in candidates:
            item = self.items.get(rule.id)
            if item is None:
                continue
            for seq in rule.sequences:
                item.operands.setdefault(_seq_label(seq), set()).add(check_sequence(seq, view))
            for sc in rule.signals:
                seen = any(s["kind"] == sc.kind for s in view.signals)
                if sc.where is not None:
                    for sig in view.signals:
                        if sig["kind"] == sc.kind:
                            a = dict(act)
                            a.update(sig)
                            self._conditions(rule.id, (sc.where,), a, f"signal {sc.kind} where ")
                item.operands.setdefault(f"signal {sc.kind}", set()).add(seen)
            self._conditions(rule.id, rule.conditions, act)
            try:
                parts = rule.conditions or rule.signals or rule.sequences
                holds = rule_holds(rule, view) if parts else True
            except ConditionError:
                holds = False
            if holds:
                item.fired = True

    def record_conditions(self, conds: Sequence[Condition], view: View) -> None:
        """Conditions of a budget, rate, tripwire or result check as they are evaluated."""
        owner = self._owners.get(id(conds))
        if owner is not None and conds:
            self._conditions(owner, conds, view.activation())

    def record_decision(self, decision: Decision) -> None:
        """Boundaries that bit and rules that decided."""
        for b in decision.boundaries:
            if not b.ok and b.id in self.items:
                self.items[b.id].fired = True
        for hit in (*decision.rules, *decision.shadow):
            if hit.id in self.items:
                self.items[hit.id].fired = True

    def record_check(self, check_id: str) -> None:
        """A result check that held at settlement."""
        if check_id in self.items:
            self.items[check_id].fired = True

    # ---- summary ---------------------------------------------------------------------------------
    def totals(self) -> dict[str, Any]:
        """Rule and branch totals with percentages."""
        n = len(self.items)
        fired = sum(1 for it in self.items.values() if it.fired)
        both = sum(it.branches[0] for it in self.items.values())
        ops = sum(it.branches[1] for it in self.items.values())
        return {
            "rules": n,
            "rules_fired": fired,
            "rule_percent": _pct(fired, n),
            "branches": ops,
            "branches_covered": both,
            "branch_percent": _pct(both, ops),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready coverage report."""
        return {
            "policy": self.policy.name,
            "revision": self.policy.revision,
            **self.totals(),
            "items": [
                {
                    "id": it.id,
                    "kind": it.kind,
                    "source": it.source,
                    "fired": it.fired,
                    "branches": {k: sorted(v) for k, v in it.operands.items()},
                    "branch_percent": _pct(*it.branches),
                }
                for it in self.items.values()
            ],
        }


def _pct(a: int, b: int) -> float:
    return round(100.0 * a / b, 1) if b else 100.0
