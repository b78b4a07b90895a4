"""Lint by proof: dead rules, permits shadowed by a forbid, conditions that can error, unreachable gates,
budgets no request can consume -- each finding proved over every request and state, or witnessed."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any

import z3

from charter.analysis.cel import _or
from charter.analysis.encode import RANK, Case, Encoded, PolicyEncoder, SymRequest, arg_types, cases
from charter.analysis.replay import NOW, Concrete, remember_marks
from charter.analysis.solve import Answer, Search, search
from charter.engine.engine import Engine
from charter.engine.policy import Budget, CompiledPolicy, Rule
from charter.enums import ActionKind, Mode, Outcome, RuleKind
from charter.errors import Error
from charter.state.memory import MemoryStore


class LintCode(enum.Enum):
    """Stable codes of proved lint findings (documented in docs/analysis.md)."""

    P101_DEAD_RULE = "P101"
    P102_SHADOWED_BY_FORBID = "P102"
    P103_CONDITION_CAN_ERROR = "P103"
    P104_UNREACHABLE_GATE = "P104"
    P105_BUDGET_NEVER_CONSUMED = "P105"

    @property
    def slug(self) -> str:
        """The human name of the code."""
        return self.name.split("_", 1)[1].lower().replace("_", "-")


@dataclass
class Finding:
    """One proved (or witnessed) finding about a rule or boundary."""

    code: LintCode
    subject: str
    message: str
    source: str | None
    answer: Answer
    witness: dict[str, Any] | None = None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {
            "code": self.code.value,
            "name": self.code.slug,
            "subject": self.subject,
            "message": self.message,
            "source": self.source,
            "answer": self.answer.value,
        }
        if self.witness is not None:
            out["counterexample"] = self.witness
        if self.reasons:
            out["reasons"] = self.reasons
        return out


@dataclass
class LintResult:
    """Every finding, the questions left unknown, and how long it took."""

    findings: list[Finding] = field(default_factory=list)
    unknowns: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "schema_version": 1,
            "findings": [f.to_dict() for f in self.findings],
            "unknown": self.unknowns,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Case:
    case: Case
    req: SymRequest
    enc: PolicyEncoder
    e: Encoded


def _solve(c: _Case, policy: CompiledPolicy, goal: z3.BoolRef) -> Search:
    """Satisfiability of ``goal`` in one case; the witness is replayed for the final outcome."""
    return search(
        c.req, goal, [policy], [c.e.outcome], c.e.approximations, check=lambda got: True, attempts=1
    )


def _well_typed(req: SymRequest) -> list[z3.BoolRef]:
    """A well-typed request: every declared argument, attribute, context field and cost unit it reads is
    present, and it names its run (missing ones fail closed by design, docs/semantics.md)."""
    out = [req.has_run()]
    for key, v in req.values().items():
        if key[0] in ("args", "actor.attr", "context", "cost") and key[-1] == "present":
            out.append(v)
    return out


def _failures(policy: CompiledPolicy, concrete: Concrete, item_id: str) -> bool:
    """The engine lists a failure of ``item_id`` for the request (a condition errored)."""
    try:
        d = Engine(policy, MemoryStore(), clock=lambda: NOW).decide(concrete.request)
    except Error:
        return False
    return any(item_id in f.where for f in d.failures) or any(item_id == s.id for s in d.shadow)


def lint(policy: CompiledPolicy) -> LintResult:
    """Proved lint findings of one compiled policy."""
    t0 = time.perf_counter()
    remember_marks([policy])
    out = LintResult()
    per_case: list[_Case] = []
    for case in cases([policy]):
        types, _ = arg_types([policy], case.tool) if case.tool else ({}, [])
        req = SymRequest(case, types, policy.tools)
        enc = PolicyEncoder(policy, req)
        per_case.append(_Case(case, req, enc, enc.encode()))
    for rule in policy.rules:
        _rule_findings(policy, rule, per_case, out)
    for b in policy.budgets:
        _budget_finding(policy, b, per_case, out)
    out.seconds = time.perf_counter() - t0
    return out


def _sat_somewhere(policy: CompiledPolicy, per_case: list[_Case], goal: Any) -> tuple[bool | None, list[str]]:
    """Is goal(case) satisfiable in some case? None with reasons when some case is unknown."""
    reasons: list[str] = []
    for c in per_case:
        g = goal(c)
        if g is None or z3.is_false(g):
            continue
        s = z3.Solver()
        s.set(timeout=20_000)
        s.add(*c.req.constraints, g)
        res = s.check()
        if res == z3.sat:
            return True, []
        if res == z3.unknown:
            reasons.append(f"{c.case}: the solver gave up: {s.reason_unknown()}")
    return (None, reasons) if reasons else (False, [])


def _rule_findings(policy: CompiledPolicy, rule: Rule, per_case: list[_Case], out: LintResult) -> None:
    src = str(rule.source) if rule.source else None
    mine = [c for c in per_case if rule.id in c.e.holds]
    # P101: the rule can never hold (it may still fail, and contribute its 'on error')
    matched, reasons = _sat_somewhere(policy, mine, lambda c: c.e.holds[rule.id])
    if matched is False:
        can_fail, _ = _sat_somewhere(policy, mine, lambda c: c.e.fails[rule.id])
        tail = f"; it can still fail and contribute its 'on error' ({rule.fail.value})" if can_fail else ""
        out.findings.append(
            Finding(
                LintCode.P101_DEAD_RULE,
                rule.id,
                f"{rule.kind.value} {rule.id} never holds: no request in any state satisfies it{tail}",
                src,
                Answer.PROVED,
            )
        )
        return
    if matched is None:
        out.unknowns.append(f"rule {rule.id}: " + "; ".join(reasons))
    # P102: a permit that holds only where a deny or halt decides anyway
    if rule.kind is RuleKind.PERMIT and rule.mode is Mode.ENFORCE and matched:
        allowed, _ = _sat_somewhere(
            policy, mine, lambda c: z3.And(c.e.holds[rule.id], c.e.rules_outcome < RANK[Outcome.DENY])
        )
        if allowed is False:
            out.findings.append(
                Finding(
                    LintCode.P102_SHADOWED_BY_FORBID,
                    rule.id,
                    f"permit {rule.id} is shadowed: wherever it holds, a forbid or halt (or a failed rule)"
                    " decides deny or halt",
                    src,
                    Answer.PROVED,
                )
            )
    # P104: an approval gate that can never be the deciding outcome
    if rule.kind is RuleKind.APPROVAL and rule.mode is Mode.ENFORCE and matched:
        gate, _ = _sat_somewhere(
            policy,
            mine,
            lambda c: z3.And(c.e.holds[rule.id], c.e.outcome == RANK[Outcome.REQUIRE_APPROVAL]),
        )
        if gate is False:
            out.findings.append(
                Finding(
                    LintCode.P104_UNREACHABLE_GATE,
                    rule.id,
                    f"the gate {rule.id} is never reached: wherever it holds, no permit allows the action"
                    " or a stricter outcome decides",
                    src,
                    Answer.PROVED,
                )
            )
    # P103: a condition that can error on a well-typed request (witnessed and replayed)
    if rule.conditions or rule.sequences:
        for c in mine:
            if z3.is_false(c.e.fails[rule.id]):
                continue
            res = _solve(c, policy, z3.And(c.e.fails[rule.id], *_well_typed(c.req)))
            if res.answer is Answer.COUNTEREXAMPLE and res.witness is not None:
                if _failures(policy, res.witness.concrete, rule.id):
                    out.findings.append(
                        Finding(
                            LintCode.P103_CONDITION_CAN_ERROR,
                            rule.id,
                            f"a condition of {rule.id} can fail on a well-typed request ({c.case}: every"
                            f" declared argument present, a run named); the rule then contributes its"
                            f" 'on error' ({rule.fail.value})",
                            src,
                            Answer.COUNTEREXAMPLE,
                            res.witness.to_dict(),
                        )
                    )
                    break
                out.unknowns.append(f"rule {rule.id}: a failure the engine did not reproduce ({c.case})")
            elif res.answer is Answer.UNKNOWN:
                out.unknowns.append(f"rule {rule.id}: {'; '.join(res.reasons)}")


def _budget_finding(policy: CompiledPolicy, b: Budget, per_case: list[_Case], out: LintResult) -> None:
    if b.mode is not Mode.ENFORCE:
        return

    def goal(c: _Case) -> Any:
        if c.case.kind is not ActionKind.CALL or not c.enc.may_target(b.selector):
            return None
        present = c.req.var(("cost", b.unit, "present"), "bool")
        amount = c.req.var(("cost", b.unit), "micros")
        falses = [c.enc.condition(cond)[0] for cond in b.conditions]
        errs = [c.enc.condition(cond)[1] for cond in b.conditions]
        return z3.And(
            c.e.rules_outcome == 0,
            c.enc.selects(b.selector),
            present,
            amount > 0,
            z3.Not(_or(falses)),
            z3.Not(_or(errs)),
        )

    consumed, reasons = _sat_somewhere(policy, per_case, goal)
    if consumed is False:
        out.findings.append(
            Finding(
                LintCode.P105_BUDGET_NEVER_CONSUMED,
                b.id,
                f"no request can consume budget {b.id}: none that it selects is allowed by the rules"
                f" with a cost in {b.unit}",
                str(b.source) if b.source else None,
                Answer.PROVED,
            )
        )
    elif consumed is None:
        out.unknowns.append(f"budget {b.id}: " + "; ".join(reasons))


__all__ = ["Finding", "LintCode", "LintResult", "lint"]
