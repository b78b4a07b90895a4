"""Engine behaviour on the example policies and on small policies: outcomes, state, failures."""

from __future__ import annotations

from typing import Any

import pytest

import charter
from charter import Outcome, RequestError
from charter.state import StoreError, StoreFault

CTX = {"workflow": "wf-1", "run": "run-1", "env": "prod"}


def req(agent: str, target: str, **kw: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"actor": {"id": agent}, "action": {"target": target}, "context": dict(CTX)}
    if "args" in kw:
        r["action"]["args"] = kw.pop("args")
    if "kind" in kw:
        r["action"]["kind"] = kw.pop("kind")
    r.update(kw)
    return r


@pytest.fixture()
def engine(example_policy: Any) -> charter.Engine:
    return charter.Engine(example_policy, clock=lambda: 1_790_000_000.0)


def test_permissions(engine: charter.Engine) -> None:
    d = engine.decide(req("research-agent", "kb.read"))
    assert (d.outcome, [h.id for h in d.rules]) == (Outcome.ALLOW, ["research-reads"])
    d = engine.decide(req("research-agent", "kb.write"))
    assert (d.outcome, [h.id for h in d.rules]) == (Outcome.DENY, ["research-never-writes-kb"])
    d = engine.decide(req("coding-agent", "git.push", args={"repo": "r", "branch": "main"}))
    assert d.outcome is Outcome.DENY and d.default_deny and d.rules == ()
    d = engine.decide(req("coding-agent", "git.push", args={"repo": "r", "branch": "feat/x"}))
    assert d.outcome is Outcome.ALLOW
    d = engine.decide(req("export-agent", "data.export", args={"dataset": "d"}))
    assert [h.id for h in d.rules] == ["pii-export-needs-clearance"]
    d = engine.decide(req("research-agent", "shell.exec"))
    assert [h.id for h in d.rules] == ["charter.unknown-tool"]


def test_approval_obligations(engine: charter.Engine) -> None:
    engine.decide(req("payments-agent", "payments.verify-payee", args={"payee": "acme"}))
    d = engine.decide(
        req(
            "payments-agent",
            "payments.transfer",
            args={"amount": 12000, "payee": "acme", "currency": "USD", "new_payee": False},
        )
    )
    assert d.outcome is Outcome.REQUIRE_APPROVAL
    gate = d.obligations["approvals"][0]
    assert gate == {
        "rule": "big-payments",
        "group": "treasury",
        "quorum": 2,
        "members": ["alice", "bob", "carol"],
        "separation_of_duties": True,
        "expires_in_s": 14400.0,
        "on_timeout": "deny",
        "redeem_within_s": 3600.0,
    }


def test_sequence_verify_before_pay(engine: charter.Engine) -> None:
    pay = req(
        "payments-agent",
        "payments.transfer",
        args={"amount": 10.0, "payee": "acme", "currency": "USD", "new_payee": False},
    )
    assert [h.id for h in engine.decide(pay).rules] == ["pay-before-verify"]
    engine.decide(req("payments-agent", "payments.verify-payee", args={"payee": "acme"}))
    assert engine.decide(pay).outcome is Outcome.ALLOW


def test_conflicting_signals_escalate_whatever_research_says(engine: charter.Engine) -> None:
    engine.decide(req("payments-agent", "payments.verify-payee", args={"payee": "acme"}))
    signals = [
        {"source": "research", "kind": "research.no-issue"},
        {"source": "risk", "kind": "risk.anomaly", "score": 0.35},
        {"source": "compliance", "kind": "compliance.regulation-conflict"},
    ]
    d = engine.decide(
        req(
            "payments-agent",
            "payments.transfer",
            args={"amount": 100.0, "payee": "acme", "currency": "USD", "new_payee": False},
            signals=signals,
        )
    )
    assert d.outcome is Outcome.ESCALATE
    esc = d.obligations["escalation"]
    assert esc["target"] == "compliance-officers" and esc["fallback"] == "deny"
    assert [s["kind"] for s in esc["signals"]] == [s["kind"] for s in signals]


def test_weak_anomaly_below_threshold_does_not_escalate(engine: charter.Engine) -> None:
    engine.decide(req("payments-agent", "payments.verify-payee", args={"payee": "acme"}))
    d = engine.decide(
        req(
            "payments-agent",
            "payments.transfer",
            args={"amount": 100.0, "payee": "acme", "currency": "USD", "new_payee": False},
            signals=[{"source": "risk", "kind": "risk.anomaly", "score": 0.1}],
        )
    )
    assert d.outcome is Outcome.ALLOW


def test_budget_reserve_settle_refund() -> None:
    p = charter.loads(
        'units USD\ntool api { tags paid }\npermit p { action call api reason "ok" }\n'
        'budget daily { scope agent  limit 50 USD per day  reason "50 a day" }\n'
    )
    e = charter.Engine(p, clock=lambda: 1_790_000_000.0)
    r = {"actor": {"id": "a"}, "action": {"target": "api"}, "cost": {"USD": 30}}
    d1 = e.decide(r)
    assert d1.outcome is Outcome.ALLOW and d1.hold_id
    d2 = e.decide(r)
    assert d2.outcome is Outcome.DENY and [h.id for h in d2.rules] == ["daily"]
    b = d2.boundaries[0]
    assert (b.used, b.reserved, b.amount, b.limit, b.ok) == (0.0, 30.0, 30.0, 50.0, False)
    s = e.settle(d1.id, actual_cost={"USD": 10})
    assert s.committed
    d3 = e.decide(r)
    assert d3.outcome is Outcome.ALLOW
    assert (d3.boundaries[0].used, d3.boundaries[0].reserved) == (10.0, 0.0)


def test_idempotent_retry_is_charged_once() -> None:
    p = charter.loads(
        'units USD\ntool api {}\npermit p { action call api reason "ok" }\n'
        'budget b { scope org  limit 50 USD  reason "x" }\n'
    )
    e = charter.Engine(p, clock=lambda: 1_790_000_000.0)
    r = {"actor": {"id": "a"}, "action": {"target": "api"}, "cost": {"USD": 30}, "idempotency_key": "k1"}
    d1 = e.decide(r)
    d2 = e.decide(r)
    assert d1.outcome is Outcome.ALLOW and d2.replayed and d2.id == d1.id
    r2 = dict(r, idempotency_key="k2")
    assert e.decide(r2).outcome is Outcome.DENY


def test_tripwire_halts_agent_and_stop_absorbs(engine: charter.Engine) -> None:
    outcomes = [engine.decide(req("risk-agent", "kb.read")).outcome for _ in range(7)]
    assert outcomes[:5] == [Outcome.ALLOW] * 5
    assert outcomes[5] is Outcome.HALT and outcomes[6] is Outcome.HALT
    assert any(s.scope == "agent" and s.value == "risk-agent" for s in engine.store.list_stops())
    d = engine.decide(req("risk-agent", "llm.complete"))
    assert d.outcome is Outcome.HALT and d.rules[0].id == "stop:agent:risk-agent"


def test_delegation_depth(engine: charter.Engine) -> None:
    r = req("coding-agent", "risk-agent", kind="delegate")
    assert engine.decide(r).outcome is Outcome.ALLOW
    r["actor"]["chain"] = ["a", "b", "c", "d", "e"]
    d = engine.decide(r)
    assert d.outcome is Outcome.DENY and [h.id for h in d.rules] == ["deep-delegation"]


def test_shadow_rule_recorded_not_enforced(engine: charter.Engine) -> None:
    d = engine.decide(req("production-agent", "plant.change-setpoint", args={"line": "a", "value": 130.0}))
    assert d.outcome is Outcome.ALLOW
    assert [(s.id, s.effect) for s in d.shadow] == [("large-setpoint-jump", Outcome.DENY)]


def test_safety_veto_halts_and_stops_agent(engine: charter.Engine) -> None:
    d = engine.decide(
        req(
            "production-agent",
            "plant.change-setpoint",
            args={"line": "a", "value": 1.0},
            signals=[{"source": "safety", "kind": "safety.veto"}],
        )
    )
    assert d.outcome is Outcome.HALT and d.obligations["stops"][0]["value"] == "production-agent"


def test_provenance_untrusted_then_outbound(engine: charter.Engine) -> None:
    d = engine.decide(req("research-agent", "web.fetch"))
    st = engine.settle(d.id, outcome="success")
    assert st.labels == ("untrusted",)
    d = engine.decide(req("payments-agent", "email.send", args={"to": "x@y", "body": "hi"}))
    assert [h.id for h in d.rules] == ["untrusted-then-outbound"]


def test_confidential_never_flows_external(engine: charter.Engine) -> None:
    r = req(
        "payments-agent", "email.send", args={"to": "x", "body": "y"}, context={"workflow": "w2", "run": "r2"}
    )
    r["action"]["labels"] = {"body": ["confidential"]}
    d = engine.decide(r)
    assert [h.id for h in d.rules] == ["confidential-never-external"]


def test_failed_payment_halts_agent_after_settlement(engine: charter.Engine) -> None:
    engine.decide(req("payments-agent", "payments.verify-payee", args={"payee": "acme"}))
    d = engine.decide(
        req(
            "payments-agent",
            "payments.transfer",
            args={"amount": 10.0, "payee": "acme", "currency": "USD", "new_payee": False},
        )
    )
    st = engine.settle(d.id, outcome="failure")
    assert st.outcome is Outcome.HALT and [c.id for c in st.checks] == ["failed-payment"]
    d = engine.decide(req("payments-agent", "email.send", args={"to": "a", "body": "b"}))
    assert d.outcome is Outcome.HALT


def test_cel_error_fails_closed() -> None:
    p = charter.loads('tool t { arg n: int }\npermit p { action call t\n when args.n > 1\n reason "x" }\n')
    d = charter.Engine(p).decide({"actor": {"id": "a"}, "action": {"target": "t", "args": {}}})
    assert d.outcome is Outcome.DENY and d.rules[0].id == "p" and d.rules[0].error
    assert d.failures[0].took == "deny"


def test_on_error_ignore_is_fail_open_and_recorded() -> None:
    p = charter.loads(
        'tool t { arg n: int }\npermit p { action call t reason "x" }\n'
        'forbid f { action call t\n when args.n > 1\n on error ignore\n reason "y" }\n'
    )
    d = charter.Engine(p).decide({"actor": {"id": "a"}, "action": {"target": "t", "args": {}}})
    assert d.outcome is Outcome.ALLOW
    assert d.failures[0].took == "ignore (fail-open)"


class BrokenStore:
    """A store whose every operation fails (as a remote store does when its server is gone)."""

    def __getattr__(self, name: str) -> Any:
        def fail(*a: Any, **k: Any) -> Any:
            raise StoreError(StoreFault.UNAVAILABLE, "test", "connection refused")

        return fail


def test_store_fault_fails_closed() -> None:
    p = charter.loads('tool t {}\npermit p { action call t reason "x" }\n')
    d = charter.Engine(p, store=BrokenStore()).decide({"actor": {"id": "a"}, "action": {"target": "t"}})
    assert d.outcome is Outcome.DENY and d.rules[0].id == "charter.fail-closed"
    assert "connection refused" in d.failures[-1].error


class BrokenTrace:
    """A trace sink that cannot write."""

    def record_decision(self, decision: Any, request: Any) -> None:
        raise OSError("disk full")

    def record_event(self, kind: str, payload: Any) -> None:
        raise OSError("disk full")


def test_trace_failure_fails_closed() -> None:
    p = charter.loads('tool t {}\npermit p { action call t reason "x" }\n')
    d = charter.Engine(p, trace=BrokenTrace()).decide({"actor": {"id": "a"}, "action": {"target": "t"}})
    assert d.outcome is Outcome.DENY and d.failures[-1].where == "trace"


def test_malformed_request_names_the_field() -> None:
    p = charter.loads('tool t {}\npermit p { action call t reason "x" }\n')
    with pytest.raises(RequestError) as info:
        charter.Engine(p).decide({"actor": {"id": "a"}, "action": {"target": 5}})
    assert str(info.value) == "request field 'action.target': an identifier is a text (str), not int"


def test_adecide() -> None:
    import asyncio

    p = charter.loads('tool t {}\npermit p { action call t reason "x" }\n')
    d = asyncio.run(charter.Engine(p).adecide({"actor": {"id": "a"}, "action": {"target": "t"}}))
    assert d.outcome is Outcome.ALLOW


def test_decision_json_is_stable(engine: charter.Engine) -> None:
    d = engine.decide(req("research-agent", "kb.read")).to_dict()
    assert list(d) == [
        "schema_version",
        "id",
        "outcome",
        "rules",
        "default_deny",
        "boundaries",
        "shadow",
        "failures",
        "obligations",
        "revision",
        "elapsed_us",
        "hold_id",
        "replayed",
        "evidence",
    ]


def test_shared_store_one_call_per_decision_and_replica_settles(tmp_path: Any) -> None:
    from charter.state import open_store

    p = charter.loads(
        'units USD\ntool api {}\npermit p { action call api reason "ok" }\n'
        'budget daily { scope agent  limit 50 USD per day  reason "50 a day" }\n'
        'rate r { scope agent  limit 100 per 1m  reason "rate" }\n'
    )
    url = f"sqlite://{tmp_path / 's.db'}"
    store_a, store_b = open_store(url), open_store(url)
    calls: list[str] = []
    for name in ("apply", "put_record", "remember", "get_record", "cas_record", "release"):
        orig = getattr(store_a, name)

        def spy(*a: Any, _orig: Any = orig, _name: str = name, **kw: Any) -> Any:
            calls.append(_name)
            return _orig(*a, **kw)

        setattr(store_a, name, spy)
    a, b = charter.Engine(p, store=store_a), charter.Engine(p, store=store_b)
    r = {"actor": {"id": "x"}, "action": {"target": "api"}, "cost": {"USD": 30}}
    d1 = a.decide(r)
    assert d1.outcome is Outcome.ALLOW and d1.hold_id
    assert calls == ["apply"]  # stops, rate and budget: one transaction
    # one unit, no run, nothing checked after the action: the hold is all settling needs
    assert store_b.get_record("pending", d1.id) is None
    calls.clear()
    d2 = a.decide(r)  # over budget: nothing written
    assert d2.outcome is Outcome.DENY and calls == ["apply"]
    assert store_b.get_record("pending", d2.id) is None
    s = b.settle(d1.id, actual_cost={"USD": 10})  # the other replica settles from the hold
    assert s.committed and s.boundaries[0].used == 10 and s.boundaries[0].reserved == 0
    assert store_b.ledger_total(d1.boundaries[-1].key or "") == 10_000_000
    with pytest.raises(KeyError, match="already settled"):
        b.settle(d1.id, actual_cost=1.0)
    a.settle(d1.id)  # the deciding replica still knows d1: its commit finds it committed already
    assert store_b.ledger_total(d1.boundaries[-1].key or "") == 10_000_000  # charged once
    with pytest.raises(KeyError, match="unknown"):
        b.settle("d-000000000000-000000000099")
    d3 = a.decide(r)
    s3 = b.settle(d3.id, actual_cost=5.5)  # a bare number is in the policy's one unit
    assert s3.committed and store_b.ledger_total(d1.boundaries[-1].key or "") == 15_500_000
    # a run in the request: settling adds the run's labels, so the request is recorded
    d4 = a.decide({**r, "context": {"run": "r1"}, "cost": {"USD": 1}})
    assert d4.outcome is Outcome.ALLOW and store_b.get_record("pending", d4.id) is not None
    s4 = b.settle(d4.id, actual_cost={"USD": 1}, labels=["done"])
    assert s4.committed and store_b.run_state("run:r1").labels == frozenset({"done"})
    a.close()
    b.close()


def test_a_hold_made_under_one_unit_settles_after_a_reload_to_two(tmp_path: Any) -> None:
    """The deciding policy had one unit (no settlement record); the settling replica's policy
    has two. The hold is still settled when the actual cost names its unit, and is unknown
    when a bare number leaves the unit open."""
    from charter.state import open_store

    one = charter.loads(
        'units USD\ntool api {}\npermit p { action call api reason "ok" }\n'
        'budget daily { scope agent  limit 50 USD per day  reason "50 a day" }\n'
    )
    two = charter.loads(
        'units USD, EUR\ntool api {}\npermit p { action call api reason "ok" }\n'
        'budget daily { scope agent  limit 50 USD per day  reason "50 a day" }\n'
    )
    url = f"sqlite://{tmp_path / 's.db'}"
    a, b = charter.Engine(one, store=open_store(url)), charter.Engine(two, store=open_store(url))
    r = {"actor": {"id": "x"}, "action": {"target": "api"}, "cost": {"USD": 30}}
    d1, d2 = a.decide(r), a.decide({**r, "cost": {"USD": 5}})
    assert d1.outcome is Outcome.ALLOW and d2.outcome is Outcome.ALLOW
    with pytest.raises(KeyError, match="unknown"):
        b.settle(d1.id, actual_cost=12.0)  # USD or EUR? not guessed
    s = b.settle(d1.id, actual_cost={"USD": 12})
    assert s.committed and s.boundaries[0].used == 12
    s2 = b.settle(d2.id)  # no actual cost: the reserved amount is spent
    assert s2.committed and s2.boundaries[0].used == 17
    a.close()
    b.close()
