"""Rule plans: the rules one request shape selects, run by generated code, verdicts memoised by which held."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import CodeType
from typing import Any

from charter.engine.evaluate import Verdict, combine, evaluate
from charter.engine.policy import CompiledPolicy, Rule
from charter.engine.view import ROOTS, View, root_bits
from charter.enums import ActionKind, Mode

#: Distinct "which rules held" patterns remembered per plan (bounds memory for wide selections).
MASK_LIMIT = 256
#: Generated plan code kept per shape (a shape: the negations of each candidate's conditions).
SHAPE_LIMIT = 4096

#: Conditions of one rule: (compiled function, negate) pairs, all of which must hold.
Checks = tuple[tuple[Callable[[Mapping[str, Any]], Any], bool], ...]


class RulePlan:
    """What deciding needs for one selection: the candidate rules, and how to get their verdict.

    ``run(view)`` is the plan's verdict. For an exact plan it is generated code (see
    :func:`_generate`): each candidate's compiled conditions called in turn, unrolled, into a
    bitmask of the rules that held, and the verdict of that mask computed once by
    :func:`combine` and memoised. Any condition that gives an error value (or anything but a
    boolean) hands the whole selection to :func:`evaluate`, the general path, which records it.

    INVARIANT: a memoised verdict is used only when every condition gave a boolean, so it is
    exactly what :func:`evaluate` returns for the same candidates and the same truth values
    (the verdict of a selection depends on nothing else: rule effects, modes, ids, the unknown
    tool case, which is fixed by the selection key). Rules with signal conditions or on the
    run's history make the plan inexact; ``run`` is then :func:`evaluate` itself. Engines built
    with ``specialise=False`` run every plan through :func:`evaluate`, and
    tests/unit/test_specialised.py compares both on whole decisions.
    """

    __slots__ = ("candidates", "checks", "exact", "roots", "run", "verdicts")

    def __init__(self, candidates: tuple[Rule, ...], specialise: bool = True):
        self.candidates = candidates
        self.checks: tuple[Checks, ...] = tuple(
            tuple((c.fn, c.negate) for c in r.conditions) for r in candidates
        )
        self.verdicts: dict[int, Verdict] = {}
        #: the activation roots the conditions read (bits of view.ROOTS); -1: not a plain root
        self.roots = root_bits(frozenset().union(*(c.references for r in candidates for c in r.conditions)))
        self.exact = (
            specialise and self.roots >= 0 and all(not r.signals and not r.reads_history for r in candidates)
        )
        self.run: Callable[[View], Verdict] = _generate(self) if self.exact else self.evaluate

    def evaluate(self, view: View) -> Verdict:
        """The general path: every candidate evaluated and combined (engine/evaluate.py)."""
        return evaluate(view, self.candidates)

    def verdict(self, view: View, mask: int) -> Verdict:
        """The verdict when the rules of ``mask`` held (and no condition failed), memoised (bounded)."""
        found = self.verdicts.get(mask)
        if found is not None:
            return found
        held: list[Rule] = []
        shadow = []
        for i, rule in enumerate(self.candidates):
            if mask >> i & 1:
                if rule.mode is Mode.SHADOW:
                    shadow.append(rule.hit)
                else:
                    held.append(rule)
        found = combine(view, held, [], shadow, [])
        if len(self.verdicts) < MASK_LIMIT:
            self.verdicts[mask] = found
        return found


#: Python expressions that build each activation root from the view (``v``).
_ROOT_SOURCE = {
    "args": "v.args",
    "actor": "v.declared.activation if v.declared is not None else v.actor_dict()",
    "context": "v.context_dict()",
    "tool": "v.tool_root()",
}
_SHAPES: dict[tuple[Any, ...], CodeType] = {}


def _generate(plan: RulePlan) -> Callable[[View], Verdict]:
    """The plan's ``run`` as straight-line Python for its shape, bound to its conditions.

    Source is built from the plan's structure only (how many conditions each candidate has and
    which are ``unless``); the compiled conditions are closure cells. Plans of one shape (and
    activation roots) share one code object.
    """
    shape = (plan.roots, tuple(tuple(neg for _, neg in checks) for checks in plan.checks))
    code = _SHAPES.get(shape)
    if code is None:
        if len(_SHAPES) >= SHAPE_LIMIT:
            _SHAPES.clear()
        code = _SHAPES[shape] = compile(_source(*shape), "<charter-plan>", "exec")
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # defines make(); the source has no value from a policy in it
    fns = [fn for checks in plan.checks for fn, _ in checks]
    run: Callable[[View], Verdict] = namespace["make"](plan, *fns)
    return run


def _source(roots: int, shape: tuple[tuple[bool, ...], ...]) -> str:
    n = sum(len(negs) for negs in shape)
    params = "".join(f", f{i}" for i in range(n))
    out = [
        f"def make(plan{params}):",
        "    verdicts = plan.verdicts",
        "    verdict = plan.verdict",
        "    general = plan.evaluate",
        "    def run(v):",
    ]
    if n:
        built = [
            f"{name!r}: {_ROOT_SOURCE.get(name, f'v.root({name!r})')}"
            for name, bit in ROOTS.items()
            if roots & bit
        ]
        out += [
            "        act = v._activation",
            "        if act is None:",
            f"            act = v._activation = {{{', '.join(built)}}}",
        ]
    base = 0
    k = 0
    body: list[str] = []
    for i, negs in enumerate(shape):
        if not negs:
            base |= 1 << i
            continue
        indent = "        "
        for neg in negs:
            body += [f"{indent}x = f{k}(act)", f"{indent}if x is {not neg}:"]
            k += 1
            indent += "    "
        body.append(f"{indent}m |= {1 << i}")
        for neg in reversed(negs):
            indent = indent[:-4]
            body += [f"{indent}elif x is not {neg}:", f"{indent}    return general(v)"]
    out.append(f"        m = {base}")
    out += body
    out += [
        "        found = verdicts.get(m)",
        "        return found if found is not None else verdict(v, m)",
        "    return run",
    ]
    return "\n".join(out) + "\n"


class Planner:
    """Plans by selection key (the same key the rule index memoises on), bounded."""

    __slots__ = ("_index", "_limit", "_plans", "_shared", "specialise")

    def __init__(self, policy: CompiledPolicy, limit: int = 100_000, specialise: bool = True):
        self._index = policy.index["rules"]
        self._plans: dict[tuple[Any, ...], RulePlan] = {}
        #: one plan per distinct candidate list: selections that pick the same rules share it (and
        #: its verdicts), so a large policy touches fewer objects per decision
        self._shared: dict[tuple[bool | int, ...], RulePlan] = {}
        self._limit = limit
        #: False: every plan runs the general path (for tests comparing both)
        self.specialise = specialise

    def plan(self, view: View) -> RulePlan:
        """The plan for this view's selection."""
        key = view.selection_key()
        found = self._plans.get(key)
        if found is None:
            found = self._new(view, key)
        return found

    def _new(self, view: View, key: tuple[Any, ...]) -> RulePlan:
        candidates = view.select(self._index)
        # combining also reads whether the tool is unknown (fixed by the key, not the rules)
        ids = (view.kind is ActionKind.CALL and view.tool is None, *map(id, candidates))
        found = self._shared.get(ids)
        if found is None or found.candidates != candidates:
            found = RulePlan(tuple(candidates), self.specialise)
        if len(self._plans) >= self._limit:
            self._plans.clear()
            self._shared.clear()
        self._plans[key] = found
        self._shared[ids] = found
        return found
