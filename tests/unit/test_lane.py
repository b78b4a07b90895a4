"""The lane (engine/lane.py) decides exactly as the full path does, and hands on what it cannot."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import charter
from charter.engine.engine import Engine
from charter.engine.req import Req, RequestError, _fast

POLICY = """
policy lane
units USD
roles ops, finance
attribute clearance: bool
attribute team: string
context env: string
context region: string
group sre { members sre-alice, sre-bob }
agent ops-1 { role ops  clearance true  team "red" }
agent fin-1 { role finance  clearance false }
agent boss { role ops }
tool deploy { category deploy }
tool pay { category payment  tags external }
tool typed { arg n: double }
permit ops-may { actor role ops
  action call deploy, typed
  reason "ops tools" }
permit ops-1-any { actor agent ops-1
  action call any
  reason "ops-1 may try anything" }
permit fin-may { actor role finance
  action call pay
  reason "payments" }
permit model-all { action model any
  reason "models are fine" }
forbid big-pay { action call pay
  when args.amount > 100
  reason "too much" }
forbid external { action call tagged external
  unless actor.clearance
  reason "external needs clearance" }
require approval prod { action call category deploy
  when context.env == "prod"
  approvers sre
  reason "prod deploys need an SRE" }
escalate eu { action call deploy
  when context.region == "eu"
  to sre
  reason "EU deploys go to the SRE group" }
forbid tool-check { action call any
  when tool.category == "" && tool.name == "notes"
  reason "unknown tools have no category" }
forbid watch-red { actor agent ops-1
  when actor.team == "red"
  mode shadow
  reason "watching team red" }
permit delegate-ok { action delegate boss
  reason "delegation" }
"""


@pytest.fixture(scope="module")
def policy() -> Any:
    return charter.loads(POLICY)


def _comparable(d: Any) -> dict[str, Any]:
    out = d.to_dict()
    out.pop("id")
    out.pop("elapsed_us")
    ob = out["obligations"]
    for k in ("approval_id", "approval_expires_at"):
        ob.pop(k, None)
    if isinstance(ob.get("escalation"), dict):
        ob["escalation"].pop("id", None)
    return out


def _both(policy: Any, request: Any) -> tuple[Any, Any]:
    """(lane result, full-path result): a decision's comparable form or the error message."""
    results = []
    for use_lane in (True, False):
        engine = charter.Engine(policy)
        decide = engine.decide if use_lane else (lambda r, e=engine: Engine.decide(e, r))
        try:
            decide(request)  # the first call builds the plan; the second uses it
            results.append(_comparable(decide(request)))
        except RequestError as exc:
            results.append(("error", str(exc)))
    return results[0], results[1]


def _req(aid: Any = "ops-1", target: Any = "deploy", **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"actor": {"id": aid}, "action": {"target": target}}
    for k, v in extra.items():
        d[k] = v
    return d


CASES: list[dict[str, Any]] = [
    _req(),
    _req(context={"env": "prod"}),
    _req(context={"env": "prod", "region": "eu"}),
    _req(context={"region": "eu", "workflow": "w", "run": "r1"}),
    _req(context={"env": None}),
    _req(context={"env": 3}),
    _req(context={"time": "2025-01-01T00:00:00Z"}),
    _req(context=None),
    _req("fin-1", "pay"),
    _req("fin-1", "pay", cost={"USD": 1.0}),
    {"actor": {"id": "fin-1", "roles": ["ops"]}, "action": {"target": "pay", "args": {"amount": 500}}},
    {"actor": {"id": "fin-1", "roles": ["ops", 3]}, "action": {"target": "pay"}},
    {"actor": {"id": "fin-1", "roles": ("ops",)}, "action": {"target": "pay"}},
    {"actor": {"id": "fin-1", "roles": None}, "action": {"target": "pay"}},
    {"actor": {"id": "fin-1", "attributes": {"clearance": True}}, "action": {"target": "pay"}},
    {"actor": {"id": "fin-1", "attributes": {"extra": 1}}, "action": {"target": "pay"}},
    {"actor": {"id": "fin-1", "attributes": None}, "action": {"target": "pay"}},
    {"actor": {"id": "ops-1", "chain": ["boss"]}, "action": {"target": "deploy"}},
    {"actor": {"id": "ops-1", "human": "ann"}, "action": {"target": "deploy"}},
    {"actor": {"id": "stranger", "roles": ["ops"]}, "action": {"target": "deploy"}},
    {
        "actor": {"id": "stranger", "roles": ["ops", "ops"], "attributes": {"clearance": True}},
        "action": {"target": "pay"},
        "context": {"env": "prod", "region": "us"},
    },
    {
        "actor": {"id": "stranger", "roles": ["ops"]},
        "action": {"target": "notes"},
        "context": {"env": "prod", "region": "us"},
    },
    {
        "actor": {"id": "stranger", "roles": ["ops"]},
        "action": {"target": "deploy"},
        "context": {"env": "prod", "region": "us"},
    },
    {"actor": {"id": "ops-1"}, "action": {"target": "typed", "args": {"n": 1}}},
    {"actor": {"id": "ops-1"}, "action": {"target": "notes"}},
    {"actor": {"id": "ops-1"}, "action": {"target": "deploy", "kind": "model"}},
    {"actor": {"id": "ops-1"}, "action": {"target": "boss", "kind": "delegate"}},
    {"actor": {"id": "ops-1"}, "action": {"target": "deploy", "kind": "nope"}},
    {"actor": {"id": "ops-1"}, "action": {"target": "deploy", "labels": {"q": ["pii"]}}},
    {"actor": {"id": "ops-1"}, "action": {"target": "deploy", "args": []}},
    {"actor": {"id": "ops-1"}, "action": {"target": ""}},
    {"actor": {"id": "ops-1"}, "action": {"target": "x" * 300}},
    {"actor": {"id": ""}, "action": {"target": "deploy"}},
    {"actor": {"id": 7}, "action": {"target": "deploy"}},
    {"actor": {"id": "ops-1"}},
    {"actor": {"id": "ops-1"}, "action": {"target": "deploy"}, "approval": "ap-1"},
    {"actor": {"id": "ops-1"}, "action": {"target": "deploy"}, "idempotency_key": "k"},
    {"actor": {"id": "ops-1"}, "action": {"target": "deploy"}, "context": {}, "cost": {}},
    {"actor": {"id": "fin-1"}, "action": {"target": "pay", "args": {"amount": "lots"}}},
]


@pytest.mark.parametrize("request_", CASES, ids=[str(i) for i in range(len(CASES))])
def test_lane_equals_full_path(policy: Any, request_: dict[str, Any]) -> None:
    lane, full = _both(policy, request_)
    assert lane == full


def test_lane_decides_the_common_shapes_itself(policy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Allows and plain denies of the common shape never reach the full path once planned."""
    calls: list[Any] = []
    original = Engine._decide_request

    def counting(self: Engine, request: Any, t0: float) -> Any:
        calls.append(request)
        return original(self, request, t0)

    monkeypatch.setattr(Engine, "_decide_request", counting)
    engine = charter.Engine(policy)
    common = [
        _req(context={"env": "dev", "region": "us"}),
        _req(context={"env": "dev", "region": "us", "run": "r", "ticket": 7}),
        {
            "actor": {"id": "fin-1", "roles": ["finance"], "attributes": {"clearance": False}},
            "action": {"kind": "call", "target": "pay", "args": {"amount": 5}},
        },
        {"actor": {"id": "fin-1"}, "action": {"target": "pay", "args": {"amount": 500}}},
        {"actor": {"id": "ops-1"}, "action": {"target": "deploy", "kind": "model"}},
        {
            "actor": {"id": "stranger", "roles": ["ops"], "attributes": {"team": "blue"}},
            "action": {"target": "deploy"},
            "context": {"env": "dev", "region": "us"},
        },
        {"actor": {"id": "stranger"}, "action": {"target": "typed"}},
    ]
    for r in common:
        engine.decide(r)
    calls.clear()
    outcomes = [engine.decide(r).outcome.value for r in common]
    assert outcomes == ["allow", "allow", "deny", "deny", "allow", "allow", "deny"]
    assert calls == []


def test_lane_hands_a_gate_to_the_general_path_with_the_fast_request(
    policy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An approval or escalation found in the lane continues with the Req the fast path builds."""
    seen: list[Req] = []
    original = Engine._finish

    def capture(self: Engine, did: str, req: Req, *a: Any, **k: Any) -> Any:
        seen.append(req)
        return original(self, did, req, *a, **k)

    monkeypatch.setattr(Engine, "_finish", capture)
    engine = charter.Engine(policy)
    requests = [
        _req(context={"env": "prod", "region": "us"}),
        _req(context={"region": "eu", "env": "dev", "workflow": "w", "run": "r", "tenant": "t", "x": [1]}),
        {
            "actor": {"id": "ops-1", "roles": ["ops"], "attributes": {"team": "red"}},
            "action": {"kind": "call", "target": "deploy", "args": {"x": 1}},
            "context": {"env": "prod", "region": "us"},
        },
    ]
    for r in requests:
        engine.decide(r)  # plans
        seen.clear()
        d = engine.decide(r)
        assert d.outcome.value in ("require_approval", "escalate")
        assert len(seen) == 1
        want = _fast(r)
        assert want is not None
        for name in Req.__slots__:
            assert getattr(seen[0], name) == getattr(want, name), name


_IDS = st.sampled_from(["ops-1", "fin-1", "boss", "stranger", "", 5, None])
_TARGETS = st.sampled_from(["deploy", "pay", "typed", "notes", "boss", "", 3])
_VALS = st.one_of(st.integers(-5, 500), st.text(max_size=3), st.none(), st.booleans(), st.floats())
_STRLIST = st.one_of(
    st.lists(st.sampled_from(["ops", "finance", "x", 1]), max_size=2), st.none(), st.tuples(st.just("ops"))
)


@st.composite
def lane_requests(draw: Any) -> dict[str, Any]:
    actor: dict[str, Any] = {"id": draw(_IDS)}
    if draw(st.booleans()):
        actor["roles"] = draw(_STRLIST)
    if draw(st.booleans()):
        actor["attributes"] = draw(
            st.one_of(
                st.dictionaries(st.sampled_from(["clearance", "team", "other"]), _VALS, max_size=2), _VALS
            )
        )
    if draw(st.integers(0, 9)) == 0:
        actor[draw(st.sampled_from(["chain", "human", "bogus"]))] = draw(st.one_of(_STRLIST, _VALS))
    action: dict[str, Any] = {"target": draw(_TARGETS)}
    if draw(st.booleans()):
        action["kind"] = draw(st.sampled_from(["call", "model", "delegate", "write", "nope", None]))
    if draw(st.booleans()):
        action["args"] = draw(
            st.one_of(st.dictionaries(st.sampled_from(["amount", "n", "q"]), _VALS, max_size=2), _VALS)
        )
    if draw(st.integers(0, 9)) == 0:
        action["labels"] = {"q": ["pii"]}
    d: dict[str, Any] = {"actor": actor, "action": action}
    if draw(st.booleans()):
        d["context"] = draw(
            st.one_of(
                st.dictionaries(
                    st.sampled_from(["env", "region", "run", "workflow", "tenant", "time", "x"]),
                    st.one_of(st.sampled_from(["prod", "dev", "eu", "us"]), _VALS),
                    max_size=3,
                ),
                st.none(),
            )
        )
    if draw(st.integers(0, 9)) == 0:
        d[draw(st.sampled_from(["cost", "signals", "approval", "trace_id", "bogus"]))] = draw(_VALS)
    return d


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lane_requests())
def test_lane_equals_full_path_fuzzed(request_: dict[str, Any]) -> None:
    lane, full = _both(_POLICY, request_)
    assert lane == full


_POLICY = charter.loads(POLICY)


def test_a_stop_set_after_planning_halts_the_lane(policy: Any) -> None:
    engine = charter.Engine(policy)
    r = _req(context={"env": "dev", "region": "us"})
    assert engine.decide(r).outcome.value == "allow"
    assert engine.decide(r).outcome.value == "allow"
    who = next(iter(policy.stops.members), "ops") if policy.stops.members else "ops"
    engine.stops.stop("agent", "ops-1", "runaway", who)
    assert engine.decide(r).outcome.value == "halt"
    assert engine.decide(_req("fin-1", "pay")).outcome.value == "deny"  # other agents go on


def test_a_gate_that_cannot_be_recorded_fails_closed_in_the_lane_as_on_the_full_path(
    policy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter.state.types import StoreError, StoreFault

    r = _req(context={"env": "prod", "region": "us"})
    results = []
    for use_lane in (True, False):
        engine = charter.Engine(policy)
        decide = engine.decide if use_lane else (lambda q, e=engine: Engine.decide(e, q))
        assert decide(r).outcome.value == "require_approval"

        def broken(*a: Any, **k: Any) -> None:
            raise StoreError(StoreFault.FULL, "memory", "disk full")

        monkeypatch.setattr(engine.store, "put_record", broken)
        d = decide(r)
        results.append(_comparable(d))
        assert d.outcome.value == "deny"
        assert d.rules[0].id == "charter.fail-closed"
        assert d.failures[-1].error == "open require_approval: [memory:full] disk full"
    assert results[0] == results[1]


def test_policy_coverage_sees_every_decision(policy: Any) -> None:
    """Engines built while coverage is tracking evaluate through Plan.run (no lane), so repeated
    requests of one shape still report which conditions held."""
    from charter.testing.coverage import Coverage, tracking

    assert "decide" in charter.Engine(policy).__dict__  # the lane, outside coverage
    cov = Coverage(policy)
    with tracking(cov):
        engine = charter.Engine(policy)
        assert "decide" not in engine.__dict__
        for amount in (5, 500, 5, 500):
            engine.decide(
                {
                    "actor": {"id": "fin-1", "attributes": {"clearance": True}},
                    "action": {"target": "pay", "args": {"amount": amount}},
                }
            )
    assert cov.items["big-pay"].fired
    assert cov.items["big-pay"].operands == {"when[0] args.amount > 100": {False, True}}
    assert Engine.lane_enabled is True
