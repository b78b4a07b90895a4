"""Every specialisation of the decide pipeline against the general path, on whole decisions.

An engine built with ``specialise=False`` takes the general way for every request: every plan runs
:func:`charter.engine.evaluate.evaluate` (no generated plan code, no memoised verdicts) and every
decision takes the stateful step (no verdict-only conclusion, no skipped store call). The default
engine must give the same decisions — outcome, deciding rules, shadow rules, failures, boundaries,
obligations, evidence, default deny, holds — on the conformance corpus, on the reference
differential's generated triples and on generated requests against the benchmark's policy.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conformance import runner
from tests.reference import gen, harness

import charter
from charter.engine.observe import Observer
from charter.state.memory import MemoryStore
from charter.state.types import StopRecord


def whole(d: Mapping[str, Any]) -> dict[str, Any]:
    """A decision as compared: everything but its id, its latency and the ids of records it opened."""
    out = dict(d)
    out.pop("id")
    out.pop("elapsed_us")
    ob = dict(out["obligations"])
    if "approval_id" in ob:
        ob["approval_id"] = "<id>"
    if "approval_expires_at" in ob:
        ob["approval_expires_at"] = "<t>"
    if "escalation" in ob and "id" in ob["escalation"]:
        ob["escalation"] = {**ob["escalation"], "id": "<id>"}
    out["obligations"] = ob
    if out.get("hold_id"):
        out["hold_id"] = "<hold>"
    return out


class ListSink:
    """A trace that keeps decision records in a list (with a trace, decisions carry evidence)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def record_decision(self, decision: Any, request: Any) -> None:
        self.records.append(decision.to_dict())

    def record_event(self, kind: str, payload: Mapping[str, Any]) -> None:
        pass


class Pair:
    """A specialised engine and a general one, each on its own store, with one clock and one trace."""

    def __init__(self, policy: Any, clock: Any, trace: bool = False):
        self.sinks = (ListSink(), ListSink()) if trace else (None, None)
        self.stores = (MemoryStore(), MemoryStore())
        self.engines = tuple(
            charter.Engine(policy, store=s, clock=clock, trace=t, specialise=spec)
            for s, t, spec in zip(self.stores, self.sinks, (True, False), strict=True)
        )

    def decide(self, req: Mapping[str, Any]) -> dict[str, Any]:
        fast, general = (e.decide(req).to_dict() for e in self.engines)
        assert whole(fast) == whole(general), f"specialised != general for {req}"
        self.last = (fast["id"], general["id"])
        return fast

    def settle(self, **kw: Any) -> dict[str, Any]:
        """Settle the last decision on both engines; the settlements must agree too."""
        fast, general = (
            e.settle(did, **kw).to_dict() for e, did in zip(self.engines, self.last, strict=True)
        )
        assert {**fast, "decision_id": ""} == {**general, "decision_id": ""}
        return fast

    def set_stop(self, scope: str, value: str, now: float) -> None:
        for s in self.stores:
            s.set_stop(StopRecord(scope, value, "conformance", "operator", now))


def _policy(case: Mapping[str, Any]) -> Any:
    text, paths = runner.policy_source(case)
    return charter.loads(text) if text is not None else charter.load(paths)


def _cases() -> list[Any]:
    return [pytest.param(c, id=f"{c['file']}:{c['note']}") for c in runner.all_cases() if not c.get("xfail")]


@pytest.mark.parametrize("case", _cases())
def test_conformance_cases_decide_the_same_either_way(case: dict[str, Any]) -> None:
    now = [runner.BASE_TIME.timestamp()]
    pair = Pair(_policy(case), lambda: now[0], trace=True)
    for stop in (case.get("setup") or {}).get("stops", []):
        pair.set_stop(stop["scope"], str(stop["value"]), now[0])
    step = 0
    for entry in (case.get("setup") or {}).get("requests", []):
        for _ in range(int(entry.get("repeat", 1))):
            req = runner._timed(entry["request"], step)
            now[0] = datetime.fromisoformat(req["context"]["time"]).timestamp()
            pair.decide(req)
            step += int(entry.get("every", 1))
            if "settle" in entry:
                pair.settle(**(entry["settle"] or {}))
        step += int(entry.get("pause", 0))
    req = runner._timed(case["request"], step)
    now[0] = datetime.fromisoformat(req["context"]["time"]).timestamp()
    got = pair.decide(req)
    assert not runner.check(case["want"], got, "decision")
    for fast, general in zip(*(s.records for s in pair.sinks), strict=True):  # type: ignore[union-attr]
        assert whole(fast) == whole(general)


def test_the_reference_triples_decide_the_same_either_way() -> None:
    """The differential's generated (policy, request, state) triples, 50 policies x 40 requests."""
    compared = 0
    for seed in range(50):
        rng = random.Random(seed)
        world = gen.PolicyGen(rng, gen.SAFE_FEATURES).policy()
        try:
            policy = charter.loads(world.text())
        except charter.CharterError:
            continue
        stops, used = gen.initial_state(rng, world)
        stores = [MemoryStore(), MemoryStore()]
        for s in stores:
            harness.seed_store(policy, s, stops, used)
        now = [0.0]  # the engines' clock follows the requests' context.time
        engines = [
            charter.Engine(policy, store=s, specialise=spec, clock=functools.partial(now.__getitem__, 0))
            for s, spec in zip(stores, (True, False), strict=True)
        ]
        for i in range(40):
            req = gen.request(rng, world, i)
            now[0] = datetime.fromisoformat(req["context"]["time"]).timestamp()
            a, b = (e.decide(req).to_dict() for e in engines)
            assert whole(a) == whole(b), f"seed {seed} request {i}: {req}"
            compared += 1
    assert compared >= 1500


_AGENTS = [f"agent-{i}" for i in range(8)]
_TOOLS = ["payments.transfer", "kb.read", "deploy.release", "email.send", "nope"]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    agent=st.sampled_from(_AGENTS),
    roles=st.lists(st.sampled_from(["payer", "reader", "sre", "x"]), max_size=2),
    tool=st.sampled_from(_TOOLS),
    amount=st.one_of(st.integers(0, 30_000), st.floats(0, 30_000), st.text(max_size=2)),
    env=st.sampled_from([None, "dev", "prod"]),
    clearance=st.one_of(st.booleans(), st.integers(0, 3), st.none()),
)
def test_generated_requests_decide_the_same_either_way(
    agent: str, roles: list[str], tool: str, amount: Any, env: str | None, clearance: Any
) -> None:
    req: dict[str, Any] = {
        "actor": {"id": agent, "roles": roles, "attributes": {"clearance": clearance}},
        "action": {"target": tool, "args": {"amount": amount}},
    }
    if env:
        req["context"] = {"env": env}
    _GENERATED.decide(req)


_GENERATED_POLICY = """
policy generated
roles payer, reader, sre, x
attribute clearance: bool
context env: string
group sre { members s1, s2 }
tool payments.transfer { category money  tags external  arg amount: double }
tool kb.read { category read }
tool deploy.release { category deploy }
tool email.send { tags external }
permit payers { actor role payer  action call payments.transfer, email.send }
permit readers { actor role reader, sre  action call kb.read }
permit sre-deploys { actor role sre  action call deploy.release }
forbid big { action call payments.transfer  when args.amount > 10000.0 }
forbid external-needs-clearance {
  action call tagged external
  unless actor.clearance
}
require approval prod-deploy {
  action call category deploy
  when context.env == "prod"
  approvers sre
}
escalate odd-amounts {
  action call payments.transfer
  when args.amount > 5000.0 && args.amount < 6000.0
}
forbid shadowed {
  action call kb.read
  when context.env == "prod"
  mode shadow
}
"""
_GENERATED = Pair(charter.loads(_GENERATED_POLICY), lambda: 1_767_225_600.0, trace=True)


# ---- the verdict-only conclusion (no trace), declared agents, chains, humans, observers --------------

_DECLARED_POLICY = (
    _GENERATED_POLICY
    + """
agent agent-0 { role payer  clearance true }
agent agent-1 { role sre }
agent agent-2 { role reader  clearance false }
"""
)
#: no trace: allows and denies are concluded from the verdict without the stateful step
_UNTRACED = Pair(charter.loads(_DECLARED_POLICY), lambda: 1_767_225_600.0)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    agent=st.sampled_from(_AGENTS[:4]),
    roles=st.lists(st.sampled_from(["payer", "reader", "sre", "x"]), max_size=2),
    tool=st.sampled_from(_TOOLS),
    amount=st.one_of(st.integers(0, 30_000), st.floats(0, 30_000)),
    env=st.sampled_from([None, "dev", "prod"]),
    attributes=st.sampled_from([None, {}, {"clearance": True}, {"clearance": False}, {"team": "x"}]),
    chain=st.sampled_from([None, [], ["agent-1"]]),
    human=st.sampled_from([None, "h1", "h 2"]),  # ("" is not an identifier: a RequestError)
)
def test_untraced_requests_decide_the_same_either_way(
    agent: str,
    roles: list[str],
    tool: str,
    amount: Any,
    env: str | None,
    attributes: dict[str, Any] | None,
    chain: list[str] | None,
    human: str | None,
) -> None:
    actor: dict[str, Any] = {"id": agent, "roles": roles}
    if attributes is not None:
        actor["attributes"] = attributes
    if chain is not None:
        actor["chain"] = chain
    if human is not None:
        actor["human"] = human
    req: dict[str, Any] = {"actor": actor, "action": {"target": tool, "args": {"amount": amount}}}
    if env:
        req["context"] = {"env": env}
    got = _UNTRACED.decide(req)
    if got["outcome"] == "allow":  # kept for settling the same way by both engines
        _UNTRACED.settle(labels=["done"])


class _Seen(Observer):
    """Counts what the engine tells it."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def rules_evaluated(self, view: Any, candidates: Any, verdict: Any) -> None:
        self.events.append("rules")

    def decision_finished(self, token: Any, request: Any, decision: Any) -> None:
        self.events.append(decision.outcome.value)


def test_an_observer_sees_verdict_only_decisions_and_changes_none() -> None:
    policy = charter.loads(_DECLARED_POLICY)
    seen = _Seen()
    plain, observed, general = (
        charter.Engine(policy, specialise=True),
        charter.Engine(policy, specialise=True, observers=[seen]),
        charter.Engine(policy, specialise=False),
    )
    reqs = [
        {"actor": {"id": "agent-0"}, "action": {"target": "payments.transfer", "args": {"amount": 5}}},
        {"actor": {"id": "agent-2"}, "action": {"target": "payments.transfer", "args": {"amount": 5}}},
        {"actor": {"id": "agent-1"}, "action": {"target": "kb.read"}, "context": {"env": "dev"}},
    ]
    for req in reqs:
        a, b, c = (whole(e.decide(req).to_dict()) for e in (plain, observed, general))
        assert a == b == c
    assert seen.events == ["rules", "allow", "rules", "deny", "rules", "allow"]


def test_default_decision_ids_are_made_inline_as_the_id_source_makes_them() -> None:
    from charter.engine.engine import SequentialIds

    engine = charter.Engine(charter.loads(_DECLARED_POLICY))
    req = {"actor": {"id": "agent-0"}, "action": {"target": "kb.read"}}
    ids = [engine.decide(req).id for _ in range(3)]
    src = engine._new_id
    assert isinstance(src, SequentialIds)
    nxt = src()  # the source's own next id follows the inline ones
    assert all(i.startswith(src.prefix) and len(i) == len(nxt) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 3 and nxt > ids[-1]
    custom = charter.Engine(charter.loads(_DECLARED_POLICY), new_id=lambda: "fixed")
    assert custom.decide(req).id == "fixed"
