"""Evaluation plans: the rules one request shape selects, flattened, with verdicts memoised by which held."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from charter.engine.decision import RuleHit
from charter.engine.evaluate import Verdict, View, combine, evaluate
from charter.engine.policy import CompiledPolicy, Rule
from charter.enums import ActionKind, Mode

#: Distinct "which rules held" patterns remembered per plan (bounds memory for wide selections).
MASK_LIMIT = 256

#: Activation roots a lane plan may read (bits of ``Plan.lane``; see engine/lane.py).
ARGS, ACTOR, CONTEXT, TOOL = 1, 2, 4, 8
_ROOT_BITS = {"args": ARGS, "actor": ACTOR, "context": CONTEXT, "tool": TOOL}


def lane_roots(references: frozenset[str]) -> int:
    """The root bits a set of condition references reads, or -1 if the lane cannot build one."""
    bits = 0
    for ref in references:
        bit = _ROOT_BITS.get(ref.split(".", 1)[0])
        if bit is None:
            return -1
        bits |= bit
    return bits


#: Conditions of one rule: (compiled function, negate) pairs, all of which must hold.
Checks = tuple[tuple[Callable[[Mapping[str, Any]], Any], bool], ...]


class Plan:
    """What deciding needs for one selection: the candidate rules' conditions in a flat form and
    the verdict of each pattern of rules that held, computed once by :func:`evaluate`.

    INVARIANT: a memoised verdict is used only when every condition gave a boolean, so it is
    exactly what :func:`evaluate` returns for the same candidates and the same truth values
    (the verdict of a selection depends on nothing else: rule effects, modes, ids, the unknown
    tool case, which is fixed by the selection key). Rules with signal or sequence conditions
    make the plan inexact; those selections always run :func:`evaluate`.
    """

    __slots__ = ("candidates", "checks", "exact", "lane", "verdicts")

    def __init__(self, candidates: tuple[Rule, ...]):
        self.candidates = candidates
        self.exact = all(not r.signals and not r.sequences for r in candidates)
        self.checks: tuple[Checks, ...] = tuple(
            tuple((c.fn, c.negate) for c in r.conditions) for r in candidates
        )
        self.verdicts: dict[int, Verdict] = {}
        #: the activation roots the lane builds for these conditions (bits), -1: not in the lane
        self.lane = (
            lane_roots(frozenset().union(*(c.references for r in candidates for c in r.conditions)))
            if self.exact
            else -1
        )

    def run(self, policy: CompiledPolicy, view: View) -> Verdict:
        """The verdict for this view (shared: callers must not mutate it)."""
        if not self.exact:
            return evaluate(policy, view, self.candidates)
        mask = 0
        bit = 1
        act = view._activation
        for checks in self.checks:
            if checks:
                if act is None:
                    act = view.activation()
                for fn, negate in checks:
                    value = fn(act)
                    if value is negate:
                        break
                    if value is not (not negate):
                        # an error value (or a non-boolean): the general path records it
                        return evaluate(policy, view, self.candidates)
                else:
                    mask |= bit
            else:
                mask |= bit
            bit <<= 1
        found = self.verdicts.get(mask)
        if found is None:
            held: list[Rule] = []
            shadow: list[RuleHit] = []
            for i, rule in enumerate(self.candidates):
                if mask >> i & 1:
                    if rule.mode is Mode.SHADOW:
                        shadow.append(rule.hit)
                    else:
                        held.append(rule)
            found = combine(view, held, [], shadow, [])
            found.frozen = (tuple(found.deciding), tuple(found.shadow), tuple(found.failures))
            if len(self.verdicts) < MASK_LIMIT:
                self.verdicts[mask] = found
        return found


class Planner:
    """Plans by selection key (the same key the rule index memoises on), bounded."""

    __slots__ = ("_index", "_limit", "_plans", "_shared")

    def __init__(self, policy: CompiledPolicy, limit: int = 100_000):
        self._index = policy.index["rules"]
        self._plans: dict[tuple[Any, ...], Plan] = {}
        #: one plan per distinct candidate list: selections that pick the same rules share it (and
        #: its verdicts), so a large policy touches fewer objects per decision
        self._shared: dict[tuple[bool | int, ...], Plan] = {}
        self._limit = limit

    def plan(self, view: View) -> Plan:
        """The plan for this view's selection."""
        kind: ActionKind = view.kind
        key = (
            kind._value_,
            view.target,
            view.actor_id,
            view.roles,
            view.ancestors,
            view.req.workflow,
            view.target_roles,
        )
        found = self._plans.get(key)
        if found is None:
            candidates = view.select(self._index)
            # combining also reads whether the tool is unknown (fixed by the key, not the rules)
            ids = (kind is ActionKind.CALL and view.tool is None, *map(id, candidates))
            found = self._shared.get(ids)
            if found is None or found.candidates != candidates:
                found = Plan(tuple(candidates))
            if len(self._plans) >= self._limit:
                self._plans.clear()
                self._shared.clear()
            self._plans[key] = found
            self._shared[ids] = found
        return found
