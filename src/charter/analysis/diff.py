"""`charter diff --prove`: every change of outcome between two compiled policies, proved or witnessed."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import z3

from charter.analysis.encode import BY_RANK, Case, PolicyEncoder, SymRequest, arg_types, cases
from charter.analysis.replay import remember_marks
from charter.analysis.solve import Answer, Witness, search
from charter.engine.policy import CompiledPolicy, Condition, Rule
from charter.enums import Outcome

_A, _RA, _E, _D, _H = (o.rank for o in (Outcome.ALLOW, Outcome.REQUIRE_APPROVAL, Outcome.ESCALATE,
                                        Outcome.DENY, Outcome.HALT))  # fmt: skip


def change_kind(old: Outcome, new: Outcome) -> tuple[str, str]:
    """(direction, kind) of an outcome change: widen when the new outcome is looser."""
    o, n = old.rank, new.rank
    if n < o:
        if n == _A:
            kind = {_RA: "gate removed", _E: "escalation removed"}.get(o, "allow gained")
        elif o >= _D and n in (_RA, _E):
            kind = "deny lost"
        elif o == _H:
            kind = "halt lost"
        else:
            kind = "escalation became a gate"
        return "widen", kind
    if o == _A:
        kind = {_RA: "gate added", _E: "escalation added"}.get(n, "allow lost")
    elif n >= _D and o in (_RA, _E):
        kind = "deny added"
    elif n == _H:
        kind = "halt added"
    else:
        kind = "gate became an escalation"
    return "narrow", kind


@dataclass
class Change:
    """One kind of change of outcome for one case of requests, with its replayed counterexample."""

    direction: str
    kind: str
    case: str
    old: str
    new: str
    witness: Witness

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "direction": self.direction,
            "kind": self.kind,
            "case": self.case,
            "old": self.old,
            "new": self.new,
            "counterexample": self.witness.to_dict(),
        }


@dataclass
class Unknown:
    """A case (or a part of one) the analysis could not settle, and why."""

    case: str
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"case": self.case, "reasons": self.reasons}


@dataclass
class DiffResult:
    """The whole answer: changes, unknowns, the cases proved unchanged, and how long it took."""

    changes: list[Change] = field(default_factory=list)
    unknowns: list[Unknown] = field(default_factory=list)
    proved: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def answer(self) -> Answer:
        """PROVED equivalent, COUNTEREXAMPLE (some change) or UNKNOWN."""
        if self.changes:
            return Answer.COUNTEREXAMPLE
        return Answer.UNKNOWN if self.unknowns else Answer.PROVED

    @property
    def widens(self) -> list[Change]:
        """The changes that loosen an outcome."""
        return [c for c in self.changes if c.direction == "widen"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "schema_version": 1,
            "answer": self.answer.value,
            "widens": len(self.widens),
            "narrows": len(self.changes) - len(self.widens),
            "changes": [c.to_dict() for c in self.changes],
            "unknown": [u.to_dict() for u in self.unknowns],
            "cases_proved": len(self.proved),
            "seconds": round(self.seconds, 3),
        }


_KEYS: dict[int, tuple[Any, Any]] = {}


def _key(x: Any) -> Any:
    """A structural identity of compiled items: conditions by text, sources and order ignored."""
    if isinstance(x, Rule):
        got = _KEYS.get(id(x))
        if got is None or got[0] is not x:
            got = _KEYS[id(x)] = (x, _key_of(x))
        return got[1]
    return _key_of(x)


def _key_of(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return tuple(_key(i) for i in x)
    if isinstance(x, Condition):
        return ("cond", x.text, x.negate)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        fields = dataclasses.fields(x)
        skip = ("source", "order", "hit")
        return (
            type(x).__name__,
            *((f.name, _key(getattr(x, f.name))) for f in fields if f.compare and f.name not in skip),
        )
    if isinstance(x, (frozenset, set)):
        return frozenset(_key(i) for i in x)
    return x


def diff_case(old: CompiledPolicy, new: CompiledPolicy, case: Case, out: DiffResult) -> None:
    """Find every (old outcome, new outcome) pair of one case, one replayed counterexample each."""
    types, clash = ({}, []) if case.tool is None else arg_types([old, new], case.tool)
    req = SymRequest(case, types, [*old.tools, *new.tools])
    po, pn = PolicyEncoder(old, req), PolicyEncoder(new, req)
    ro, rn = po.relevant_rules(), pn.relevant_rules()
    if (
        _key(ro) == _key(rn)
        and _key(old.rates) == _key(new.rates)
        and _key(old.budgets) == _key(new.budgets)
        and _key(old.tripwires) == _key(new.tripwires)
        and (case.tool is None or (case.tool in old.tools) == (case.tool in new.tools))
        and _same_agents(old, new)
        and old.units == new.units
    ):
        out.proved.append(str(case))  # the same rules and boundaries: the same decisions
        return
    eo, en = po.encode(ro), pn.encode(rn)
    approx = list(dict.fromkeys(eo.approximations + en.approximations))
    if clash:
        out.unknowns.append(Unknown(str(case), [f"argument {a} has different types" for a in clash]))
        return
    if _key(old.tripwires) != _key(new.tripwires):
        approx.append("the tripwires differ (tripwires are not encoded)")
    blocked: list[z3.BoolRef] = []
    while True:
        goal = z3.And(eo.outcome != en.outcome, *blocked) if blocked else eo.outcome != en.outcome
        res = search(req, goal, [old, new], [eo.outcome, en.outcome], approx)
        if res.answer is Answer.PROVED:
            if not blocked:
                out.proved.append(str(case))
            return
        if res.answer is Answer.UNKNOWN:
            out.unknowns.append(Unknown(str(case), res.reasons))
            return
        w = res.witness
        assert w is not None
        o, n = Outcome(w.replayed[0]), Outcome(w.replayed[1])
        direction, kind = change_kind(o, n)
        out.changes.append(Change(direction, kind, str(case), o.value, n.value, w))
        blocked.append(z3.Not(z3.And(eo.outcome == o.rank, en.outcome == n.rank)))
        if len(blocked) > 20:
            return


def _same_agents(a: CompiledPolicy, b: CompiledPolicy) -> bool:
    return dict(a.agents) == dict(b.agents)


def prove_diff(old: CompiledPolicy, new: CompiledPolicy) -> DiffResult:
    """Every change of outcome from ``old`` to ``new``, over every request and state."""
    t0 = time.perf_counter()
    remember_marks([old, new])
    out = DiffResult()
    for case in cases([old, new]):
        diff_case(old, new, case, out)
    out.seconds = time.perf_counter() - t0
    _KEYS.clear()
    return out


__all__ = ["BY_RANK", "Change", "DiffResult", "Unknown", "change_kind", "prove_diff"]
