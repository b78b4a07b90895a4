"""`charter prove`: "can <actor or role> <call T> [where CEL]", an outcome proved unreachable or witnessed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import z3

from charter.analysis.cel import Encoder, Unsupported
from charter.analysis.encode import RANK, Case, PolicyEncoder, SymRequest, arg_types
from charter.analysis.replay import remember_marks
from charter.analysis.solve import Answer, Witness, search
from charter.cel import CelCompileError, CelType, compile_condition
from charter.engine.policy import CompiledPolicy
from charter.enums import ActionKind, Outcome
from charter.errors import Error

_Q = re.compile(
    r"^\s*can\s+(?:(role|agent)\s+)?(\S+)\s+(call|delegate|model|message)(?:\s+(?:to\s+)?([^\s]+))?"
    r"(?:\s+where\s+(.+))?\s*$",
    re.S,
)
S, D = CelType.STRING, CelType.DOUBLE


class QueryError(Error):
    """The question is not of the form "can <actor|role R> <kind> [TARGET] [where CEL]"."""


@dataclass
class ReachResult:
    """The answer to a reachability question."""

    answer: Answer
    question: str
    outcome: str
    witness: Witness | None = None
    reasons: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {
            "question": self.question,
            "outcome": self.outcome,
            "answer": self.answer.value,
        }
        if self.witness is not None:
            out["counterexample"] = self.witness.to_dict()
        if self.reasons:
            out["reasons"] = self.reasons
        return out


def _env(policy: CompiledPolicy, tool: str | None) -> dict[str, CelType]:
    kinds = {"int": CelType.INT, "double": D, "number": D, "string": S, "bool": CelType.BOOL}
    args = {}
    if tool and tool in policy.tools:
        args = {k: kinds.get(v, CelType.DYN) for k, v in policy.tools[tool].args.items()}
    return {
        "args": CelType.OBJECT(args),
        "cost": CelType.MAP(S, D),
        "actor": CelType.OBJECT({"id": S, "roles": CelType.LIST(S), "depth": CelType.INT, "human": S}),
        "context": CelType.OBJECT({"workflow": S, "run": S, "tenant": S, "env": S}),
    }


def _every_state(req: SymRequest, goal: z3.BoolRef) -> z3.BoolRef:
    """``goal`` for every value of the state (rate counts, budget spend, the run's history)."""
    from z3.z3util import get_vars

    state = [v for k, v in req.values().items() if k[0] in ("state.rate", "run.mark", "run.labels")]
    state += [v for k, v in req.values().items() if k[0] == "state.budget" and k[-1] == "#n"]
    state.append(req.run_steps)
    names = {str(v) for v in state}
    bounds = [c for c in req.constraints if any(str(v) in names for v in get_vars(c))]
    return z3.ForAll(state, z3.Implies(z3.And(*bounds), goal)) if bounds else z3.ForAll(state, goal)


def reach(
    policy: CompiledPolicy, question: str, outcome: str = "allow", every_state: bool = False
) -> ReachResult:
    """Is there a request (and state) matching the question that the policy decides ``outcome``?
    With ``every_state``: a request the policy decides ``outcome`` whatever the state."""
    m = _Q.match(question)
    if m is None:
        raise QueryError('expected "can <agent | role R> <call|delegate|model|message> [TARGET] [where CEL]"')
    by, who, kind_text, target, where = m.groups()
    kind = ActionKind(kind_text)
    want = Outcome(outcome)
    if kind is ActionKind.CALL and not target:
        raise QueryError("a call needs a target tool")
    tool = target if kind is ActionKind.CALL else None
    case = Case(kind, tool if tool in policy.tools else None)
    types, _ = arg_types([policy], tool) if tool else ({}, [])
    req = SymRequest(case, types, policy.tools)
    remember_marks([policy])
    enc = PolicyEncoder(policy, req)
    e = enc.encode()
    goal: list[z3.BoolRef] = [e.outcome == RANK[want]]
    if case.tool is None and target:
        goal.append(req.target == z3.StringVal(target))
    role = by == "role" or (
        by is None and who not in policy.agents and who != "any" and _is_role(policy, who)
    )
    if who != "any":
        goal.append(enc.role(who) if role else req.actor == z3.StringVal(who))
    reasons = list(e.approximations)
    if where:
        try:
            compiled = compile_condition(where, _env(policy, tool))
            v = Encoder(enc.roots(), where).encode(compiled.node)
            if v.kind != "bool":
                raise Unsupported("a where-clause that is not true or false")
            goal += [v.term, z3.Not(v.err)]
        except CelCompileError as ex:
            raise QueryError(f"where: {ex}") from None
        except Unsupported as ex:
            return ReachResult(Answer.UNKNOWN, question, outcome, None, [f"where: {ex} is not encoded"])

    def check(got: tuple[str, ...]) -> bool:
        return got == (want.value,)

    target = z3.And(*goal)
    if every_state:
        target = _every_state(req, target)
    res = search(req, target, [policy], [e.outcome], reasons, check)
    return ReachResult(res.answer, question, outcome, res.witness, res.reasons or None)


def _is_role(policy: CompiledPolicy, name: str) -> bool:
    roles: set[str] = set()
    for info in policy.agents.values():
        roles |= info.roles
    for r in policy.rules:
        roles |= r.selector.actor_roles
    return name in roles
