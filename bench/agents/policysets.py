"""Policy sets the scenarios run against: a policy directory and how requests are built for it.

``before`` is the example assistant's policy in today's language (examples/assistant/policy):
intent is the user's prompt in ``context.user_prompt``, provenance is one label set per argument
(the union over a list's elements), and settling adds the result's labels to the run.

``after`` is the same assistant with the language of docs/design/agent-security.md: run grants
declared by the trusted caller before the run, provenance per element with named sources (the
earlier call that produced a value), results kept in the run's history. It is ``ready`` when the
engine has what it needs (``Engine.begin_run``, ``settle(result=...)``) and the policy is no
longer a draft; until then ``why`` says what is missing and the runner refuses it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench.agents.scenario import AGENT, USER, Provenance, Scenario, Step, source_field, source_step

ROOT = Path(__file__).resolve().parents[2]
#: the scenario corpus and the assistant's policies
CORPUS = ROOT / "tests" / "scenarios" / "assistant"
POLICIES = ROOT / "examples" / "assistant"

#: the agent id the assistant uses in every request, and the person who answers its gates
AGENT_ID = "assistant"
APPROVER = "maya"


class PolicySet(Protocol):
    """A policy and the request shape it expects."""

    name: str

    @property
    def ready(self) -> bool:
        """False while the engine lacks what the set needs (then ``why`` says what)."""
        ...

    @property
    def why(self) -> str:
        """What the set lacks to run (empty when ready)."""
        ...

    def policy_path(self) -> Path:
        """The directory of ``*.charter`` files."""
        ...

    def begin(self, engine: Any, scenario: Scenario, run: str) -> None:
        """Anything the trusted caller does before the run's first call."""
        ...

    def request(self, scenario: Scenario, step: Step, prov: Provenance, run: str) -> dict[str, Any]:
        """The decision request for one step."""
        ...

    def settle_labels(self, scenario: Scenario, step: Step, prov: Provenance) -> list[str]:
        """The labels given when the step's call is settled."""
        ...

    def settle_result(self, step: Step) -> Mapping[str, Any] | None:
        """The call's result as ``settle(result=...)`` takes it (None: not given)."""
        ...


@dataclass(frozen=True)
class Before:
    """Today's language: prompt regexes, per-argument labels, run labels from settlement."""

    name: str = "before"
    ready: bool = True
    why: str = ""

    def policy_path(self) -> Path:
        """examples/assistant/policy."""
        return POLICIES / "policy"

    def begin(self, engine: Any, scenario: Scenario, run: str) -> None:
        """Nothing: today a run has no start."""

    def request(self, scenario: Scenario, step: Step, prov: Provenance, run: str) -> dict[str, Any]:
        """Per-argument labels (a list's elements merged); the prompt in the context."""
        labels = {a: sorted(prov.flat(a)) for a in step.args if prov.flat(a)}
        action: dict[str, Any] = {"kind": "call", "target": step.call, "args": dict(step.args)}
        if labels:
            action["labels"] = labels
        req: dict[str, Any] = {
            "actor": {"id": AGENT_ID},
            "action": action,
            "context": {"run": run, "user_prompt": scenario.prompt},
        }
        amount = step.args.get("amount")
        if isinstance(amount, (int, float)) and amount >= 0:
            # budgets count only the request's cost: the orchestrator copies the amount there
            # (and the policy checks it did: forbid cost-is-the-amount)
            req["cost"] = {"EUR": float(amount)}
        return req

    def settle_labels(self, scenario: Scenario, step: Step, prov: Provenance) -> list[str]:
        """The result's labels."""
        return sorted(prov.result_labels)

    def settle_result(self, step: Step) -> Mapping[str, Any] | None:
        """Nothing: today's history keeps no results."""
        return None


def _source(src: str, run: str) -> dict[str, Any]:
    """One source in the wire form; a call is named by its id only (the engine knows its tool
    from its own record of the call, so the orchestrator cannot misname it)."""
    if src == USER:
        return {"from": "user"}
    if src == AGENT:
        return {"from": "agent"}
    step, field = source_step(src), source_field(src)
    out = {"call": f"{run}:{step}"}
    return out | {"field": field} if field else out


def missing_features() -> list[str]:
    """What the after set needs and this engine or checkout lacks (empty: it can run)."""
    import charter

    out = []
    if not hasattr(charter.Engine, "begin_run"):
        out.append("Engine.begin_run (run grants)")
    if "result" not in inspect.signature(charter.Engine.settle).parameters:
        out.append("settle(result=...) (history of results)")
    if not list((POLICIES / "after").glob("*.charter")):
        out.append("examples/assistant/after/*.charter (the policy is still a draft)")
    return out


@dataclass(frozen=True)
class After:
    """The proposed language (docs/design/agent-security.md): grants, per-element provenance."""

    name: str = "after"

    @property
    def ready(self) -> bool:
        """Whether the engine has every feature the set needs."""
        return not missing_features()

    @property
    def why(self) -> str:
        """What is missing (empty when ready)."""
        missing = missing_features()
        return f"needs {'; '.join(missing)}: see docs/design/agent-security.md" if missing else ""

    def policy_path(self) -> Path:
        """examples/assistant/after."""
        return POLICIES / "after"

    def begin_payload(self, scenario: Scenario, run: str) -> dict[str, Any]:
        """What the trusted caller declares at the start of the run (``POST /v1/runs``)."""
        return {"run": run, "actor": AGENT_ID, "grants": [dict(g) for g in scenario.grants]}

    def begin(self, engine: Any, scenario: Scenario, run: str) -> None:
        """``engine.begin_run(run, actor=..., grants=...)`` (the proposed API). A grant the
        policy refuses (``GrantError.refused``: their indexes) is dropped and the run starts
        with the others, as an orchestrator would after reading the diagnostics."""
        import charter

        payload = self.begin_payload(scenario, run)
        grants = payload["grants"]
        try:
            engine.begin_run(run, actor=payload["actor"], grants=grants)
        except charter.Error as exc:
            refused = set(getattr(exc, "refused", ()))
            if not refused:
                raise
            kept = [g for i, g in enumerate(grants) if i not in refused]
            engine.begin_run(run, actor=payload["actor"], grants=kept)

    def request(self, scenario: Scenario, step: Step, prov: Provenance, run: str) -> dict[str, Any]:
        """Arguments with their sources, per element for lists; no labels and no prompt.

        The orchestrator reports facts (which call, which field of its result, or the user, or
        the model); the policy decides what they are worth (``on result ... then label``), so
        trust is written in the policy, not in the orchestrator.
        """
        provenance: dict[str, Any] = {}
        for a, srcs in step.sources.items():
            if isinstance(prov.arg_labels[a], tuple):  # a list: one entry per element
                provenance[a] = [{"sources": [_source(x, run) for x in el]} for el in srcs]
            else:
                provenance[a] = {"sources": [_source(x, run) for x in srcs]}  # type: ignore[arg-type]
        return {
            "actor": {"id": AGENT_ID},
            "action": {
                "kind": "call",
                "target": step.call,
                "call_id": f"{run}:{step.id}",
                "args": dict(step.args),
                "provenance": provenance,
            },
            "context": {"run": run},
        }

    def settle_labels(self, scenario: Scenario, step: Step, prov: Provenance) -> list[str]:
        """Only what the orchestrator learned from the content itself (a step's own ``labels``,
        e.g. a scan that found secrets); the tool's labels come from the policy's checks."""
        return sorted(step.labels) if step.labels is not None else []

    def settle_result(self, step: Step) -> Mapping[str, Any] | None:
        """The scripted result: an object as it is, a list of rows as ``{"items": rows}`` (the
        tools declare ``result items: list of map of any``); the engine keeps declared fields."""
        r = step.result
        if isinstance(r, Mapping):
            return dict(r)
        if isinstance(r, list):
            return {"items": list(r)}
        return None


#: every policy set by name
POLICY_SETS: dict[str, PolicySet] = {"before": Before(), "after": After()}
