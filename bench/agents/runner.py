"""Drive charter's engine through a scenario, step by step, as an orchestrator would.

For each step: decide; if a human gate is met, the user answers it (yes to the steps of their
own task, no to a call the hijacked agent made: a careful human) and the call is resubmitted
with the answer; if allowed, "execute" it by taking the scripted result and settle it with the
result's labels. Only the public API is used (``charter.load``, ``charter.Engine``, ``decide``,
``settle`` and the engine's approvals and escalations), so the runner survives engine rewrites.

The report says, per scenario: each step's outcome and deciding rules, the approvals the
legitimate steps needed, legitimate steps the policy broke, and for an attack whether its
harmful steps were stopped without a human (``blocked``), only by a human gate (``gate``), or
not at all (``through``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

import charter
from bench.agents.policysets import APPROVER, PolicySet
from bench.agents.scenario import Corpus, Scenario, provenance

__all__ = ["Figures", "ScenarioReport", "StepReport", "figures", "run_corpus", "run_scenario"]

GATES = ("require_approval", "escalate")
_ENV_COUNTS = ("tasks", "tasks_with_approval", "approvals", "attacks", "blocked", "gate")
STOPS = ("deny", "halt")


@dataclass(frozen=True)
class StepReport:
    """What happened to one call."""

    id: str
    call: str
    outcome: str  # the first decision
    final: str  # after a human answered a gate (else the same)
    rules: tuple[str, ...]  # the rules behind the first decision ("default-deny" when none)
    executed: bool
    injected: bool
    harmful: bool


@dataclass(frozen=True)
class ScenarioReport:
    """What happened to one scenario."""

    id: str
    kind: str
    env: str
    steps: tuple[StepReport, ...]

    @property
    def approvals(self) -> int:
        """Gates the legitimate steps met (each one a human interruption)."""
        return sum(1 for s in self.steps if not s.injected and s.outcome in GATES)

    @property
    def blocked(self) -> int:
        """Legitimate steps the policy refused: a task it broke."""
        return sum(1 for s in self.steps if not s.injected and s.final in STOPS)

    @property
    def verdict(self) -> str | None:
        """Attacks: ``through`` if a harmful step ran, ``gate`` if only a human stopped it,
        ``blocked`` if the policy stopped every harmful step by itself."""
        harmful = [s for s in self.steps if s.harmful]
        if not harmful:
            return None
        if any(s.final == "allow" for s in harmful):
            return "through"
        if any(s.outcome in GATES for s in harmful):
            return "gate"
        return "blocked"

    @property
    def stopped_by(self) -> tuple[str, ...]:
        """The rules behind the harmful steps' decisions."""
        return tuple(sorted({r for s in self.steps if s.harmful for r in s.rules}))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "kind": self.kind,
            "env": self.env,
            "approvals": self.approvals,
            "blocked": self.blocked,
            "verdict": self.verdict,
            "stopped_by": list(self.stopped_by),
            "steps": [s.__dict__ | {"rules": list(s.rules)} for s in self.steps],
        }


_runs = itertools.count(1)


def _answer(engine: Any, decision: Any, yes: bool) -> str | None:
    """Answer a gate as the user; the id to resubmit with when the answer is yes."""
    ob = decision.obligations
    if decision.outcome.value == "require_approval":
        aid = str(ob["approval_id"])
        if yes:
            engine.approvals.approve(aid, APPROVER)
        else:
            engine.approvals.deny(aid, APPROVER)
        return aid if yes else None
    esc = ob.get("escalation") or {}
    eid = esc.get("id")
    if eid is None:
        return None
    engine.escalations.answer(str(eid), APPROVER, "allow" if yes else "deny")
    return str(eid) if yes else None


#: one timed engine call: ("decide" | "settle", the decision's outcome, nanoseconds)
Timing = tuple[str, str, int]


def run_scenario(
    policy: charter.Policy,
    policy_set: PolicySet,
    corpus: Corpus,
    scenario: Scenario,
    run: str | None = None,
    timings: list[Timing] | None = None,
) -> ScenarioReport:
    """Run one scenario on a fresh engine (a stop set by one scenario never leaks into another).

    With ``timings``, every ``decide`` and ``settle`` call is timed and appended (the benchmark
    suite times the same run the tests check; building requests and answering gates are not timed).
    """
    engine = charter.Engine(policy)
    run = run or f"{scenario.id}-{next(_runs)}"
    policy_set.begin(engine, scenario, run)
    prov = provenance(corpus.world, scenario.steps)
    timed = timings is not None

    def decide(req: Mapping[str, Any]) -> Any:
        t0 = perf_counter_ns() if timed else 0
        d = engine.decide(req)
        if timings is not None:
            timings.append(("decide", d.outcome.value, perf_counter_ns() - t0))
        return d

    out = []
    for step in scenario.steps:
        p = prov[step.id]
        req = policy_set.request(scenario, step, p, run)
        d = decide(req)
        first = d.outcome.value
        rules = tuple(h.id for h in d.rules) or (("default-deny",) if d.default_deny else ())
        if first in GATES:
            answer = _answer(engine, d, yes=not step.injected)
            if answer is not None:
                d = decide({**req, "approval": answer})
        final = d.outcome.value if first not in GATES or d.outcome.value != first else "deny"
        executed = final == "allow"
        if executed:
            labels = policy_set.settle_labels(scenario, step, p)
            result = policy_set.settle_result(step)
            extra = {"result": result} if result is not None else {}
            t0 = perf_counter_ns() if timed else 0
            engine.settle(d.id, outcome="success", labels=labels, **extra)
            if timings is not None:
                timings.append(("settle", "allow", perf_counter_ns() - t0))
        out.append(StepReport(step.id, step.call, first, final, rules, executed, step.injected, step.harmful))
    return ScenarioReport(scenario.id, scenario.kind, scenario.env, tuple(out))


def run_corpus(
    corpus: Corpus, policy_set: PolicySet, scenarios: Iterable[Scenario] | None = None
) -> list[ScenarioReport]:
    """Run every scenario (or the given ones) against the policy set."""
    if not policy_set.ready:
        raise RuntimeError(f"policy set {policy_set.name!r} cannot run yet: {policy_set.why}")
    policy = charter.load(policy_set.policy_path())
    return [run_scenario(policy, policy_set, corpus, s) for s in scenarios or corpus.scenarios]


@dataclass(frozen=True)
class Figures:
    """The figures issue 18 asks for, for one policy set."""

    tasks: int
    tasks_with_approval: int
    task_approvals: int
    tasks_broken: int
    attacks: int
    attacks_blocked: int
    attacks_gated: int
    attacks_through: int
    attack_run_approvals: int
    by_env: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)

    def lines(self) -> list[str]:
        """The figures in words."""
        return [
            f"legitimate tasks: {self.tasks}; needing at least one approval: {self.tasks_with_approval} "
            f"({self.task_approvals} approvals in all); run with none: "
            f"{self.tasks - self.tasks_with_approval}; broken (a step refused): {self.tasks_broken}",
            f"attacks: {self.attacks}; stopped without a human: {self.attacks_blocked}; "
            f"stopped only by a human gate: {self.attacks_gated}; got through: {self.attacks_through}",
        ]


def figures(reports: Iterable[ScenarioReport]) -> Figures:
    """Count tasks needing approvals and attacks by verdict, overall and per environment."""
    reports = list(reports)
    tasks = [r for r in reports if r.kind == "task"]
    attacks = [r for r in reports if r.kind == "attack"]
    by_env: dict[str, dict[str, int]] = {}
    for r in reports:
        e = by_env.setdefault(r.env, dict.fromkeys(_ENV_COUNTS, 0))
        if r.kind == "task":
            e["tasks"] += 1
            e["tasks_with_approval"] += r.approvals > 0
            e["approvals"] += r.approvals
        else:
            e["attacks"] += 1
            if r.verdict in ("blocked", "gate"):
                e[r.verdict] += 1
    return Figures(
        tasks=len(tasks),
        tasks_with_approval=sum(1 for r in tasks if r.approvals),
        task_approvals=sum(r.approvals for r in tasks),
        tasks_broken=sum(1 for r in tasks if r.blocked),
        attacks=len(attacks),
        attacks_blocked=sum(1 for r in attacks if r.verdict == "blocked"),
        attacks_gated=sum(1 for r in attacks if r.verdict == "gate"),
        attacks_through=sum(1 for r in attacks if r.verdict == "through"),
        attack_run_approvals=sum(r.approvals for r in attacks),
        by_env=by_env,
    )
