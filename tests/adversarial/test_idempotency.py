"""Attacks on idempotency keys: a key names one request; another request under it is refused, and a stop
is checked before any replay (issue 15 item 1; docs/semantics.md §10).

Invariant attacked: a retried request gets its first decision back and is charged once; a *different*
request under a used key is never allowed (in-process: deny naming the key; over HTTP: 409); a stop
covers a replay like any other decision. On every store and over the sidecar's real HTTP.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.adversarial.engine_side import (
    BACKENDS,
    POLICY,
    Clock,
    Http,
    budget_line,
    engine_on,
    http_for,
    pay,
)

import charter
from charter.state import StopRecord

KEY = "retry-7f3a"


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[charter.Engine, Clock]]:
    yield from engine_on(request.param, tmp_path)


def _refused(d: charter.Decision) -> bool:
    return d.outcome is not charter.Outcome.ALLOW and any(h.kind == "idempotency" for h in d.rules)


def test_a_retry_is_replayed_and_charged_once(engine: tuple[charter.Engine, Clock]) -> None:
    e, clock = engine
    first = e.decide(pay(100.0, idempotency_key=KEY))
    assert first.allowed and not first.replayed
    clock.t += 1
    again = e.decide(pay(100.0, idempotency_key=KEY))
    assert again.replayed and again.id == first.id and again.allowed
    assert budget_line(e, first)[1] == 100_000_000  # one hold, charged once


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("another tool", lambda r: r["action"].update(target="search", args={})),
        ("an undeclared tool", lambda r: r["action"].update(target="shell.exec")),
        ("another actor", lambda r: r["actor"].update(id="mallory")),
        (
            "a bigger amount",
            lambda r: (r["action"]["args"].update(amount=900.0), r.update(cost={"USD": 900.0})),
        ),
        ("a bigger cost only", lambda r: r.update(cost={"USD": 999.0})),
        ("other arguments", lambda r: r["action"]["args"].update(to="mallory-offshore")),
        ("another context", lambda r: r.update(context={"tenant": "other"})),
        ("labels added", lambda r: r["action"].update(labels={"to": ["untrusted"]})),
        ("a signal added", lambda r: r.update(signals=[{"source": "risk", "kind": "fraud"}])),
    ],
)
def test_another_request_under_a_used_key_is_refused(
    engine: tuple[charter.Engine, Clock], what: str, change: Any
) -> None:
    e, clock = engine
    first = e.decide(pay(100.0, idempotency_key=KEY))
    assert first.allowed
    other = pay(100.0, idempotency_key=KEY)
    change(other)
    clock.t += 1
    d = e.decide(other)
    assert not d.allowed, f"{what}: a different request under a used key was allowed"
    assert _refused(d) and not d.replayed, d
    assert KEY in d.rules[0].reason and "different request" in d.rules[0].reason
    assert budget_line(e, first)[1] == 100_000_000  # nothing more was reserved
    # the first request still gets its own decision back
    assert e.decide(pay(100.0, idempotency_key=KEY)).id == first.id


def test_a_stop_is_checked_before_a_replay(engine: tuple[charter.Engine, Clock]) -> None:
    e, clock = engine
    assert e.decide(pay(10.0, idempotency_key=KEY)).allowed
    e.store.set_stop(StopRecord("global", "*", "incident", "ops", clock()))
    clock.t += 1
    d = e.decide(pay(10.0, idempotency_key=KEY))
    assert d.outcome is charter.Outcome.HALT and not d.replayed
    assert e.decide(pay(999.0, idempotency_key=KEY)).outcome is charter.Outcome.HALT


def test_an_agent_stop_covers_the_replay_of_its_request(engine: tuple[charter.Engine, Clock]) -> None:
    e, clock = engine
    assert e.decide(pay(10.0, idempotency_key=KEY)).allowed
    e.store.set_stop(StopRecord("agent", "payments-agent", "runaway", "ops", clock()))
    d = e.decide(pay(10.0, idempotency_key=KEY))
    assert d.outcome is charter.Outcome.HALT and not d.replayed


def test_a_refused_request_does_not_take_the_key_over(engine: tuple[charter.Engine, Clock]) -> None:
    """A deny under a fresh key is remembered; a refusal for reuse is not (the first stays)."""
    e, _ = engine
    first = e.decide(pay(50_000.0, idempotency_key=KEY))  # over the budget: denied, remembered
    assert not first.allowed
    assert _refused(e.decide(pay(1.0, idempotency_key=KEY)))
    again = e.decide(pay(50_000.0, idempotency_key=KEY))
    assert again.replayed and again.id == first.id


_variants = st.fixed_dictionaries(
    {
        "target": st.sampled_from(["pay", "search", "nope"]),
        "amount": st.sampled_from([1.0, 10.0, 10.5, 500.0]),
        "cost": st.sampled_from([None, 1.0, 10.0, 500.0]),
        "actor": st.sampled_from(["payments-agent", "a2"]),
    }
)


def _variant(v: dict[str, Any]) -> dict[str, Any]:
    req: dict[str, Any] = {
        "actor": {"id": v["actor"]},
        "action": {"target": v["target"], "args": {"amount": v["amount"]}},
        "idempotency_key": KEY,
    }
    if v["cost"] is not None:
        req["cost"] = {"USD": v["cost"]}
    return req


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(first=_variants, second=_variants)
def test_generated_pairs_under_one_key(first: dict[str, Any], second: dict[str, Any]) -> None:
    """Replayed exactly when the two requests are the same; otherwise never allowed."""
    e = charter.Engine(charter.loads(POLICY), clock=Clock())
    d1 = e.decide(_variant(first))
    d2 = e.decide(_variant(second))
    if first == second:
        assert d2.replayed and d2.id == d1.id
    else:
        assert not d2.allowed and _refused(d2)


# ---- over the sidecar's real HTTP ------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    yield from http_for(tmp_path_factory)


def test_http_a_retry_is_replayed(http: Http) -> None:
    body = pay(10.0, idempotency_key="http-same")
    first = http.post("/v1/decide", body)
    assert first.status_code == 200 and first.json()["outcome"] == "allow"
    again = http.post("/v1/decide", copy.deepcopy(body))
    assert again.status_code == 200 and again.json()["replayed"] and again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    "other",
    [
        {"action": {"target": "search"}},
        {"action": {"target": "shell.exec"}},
        {"actor": {"id": "mallory"}},
        {"cost": {"USD": 999.0}},
    ],
)
def test_http_another_request_under_a_used_key_is_409(http: Http, other: dict[str, Any]) -> None:
    key = f"http-{sorted(other)[0]}-{len(str(other))}"
    assert http.post("/v1/decide", pay(10.0, idempotency_key=key)).status_code == 200
    body = {**pay(10.0, idempotency_key=key), **other}
    r = http.post("/v1/decide", body)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "idempotency-conflict" and r.json()["field"] == "idempotency_key"
    assert "allow" not in r.text or '"outcome"' not in r.text


def test_http_a_stop_is_checked_before_a_replay(http: Http) -> None:
    key = "http-stop"
    assert http.post("/v1/decide", pay(10.0, idempotency_key=key)).json()["outcome"] == "allow"
    stop = {"scope": "tool", "value": "pay", "reason": "incident"}
    assert http.post("/v1/stops", stop, headers=http.ops).status_code == 200
    r = http.post("/v1/decide", pay(10.0, idempotency_key=key))
    assert r.status_code == 200 and r.json()["outcome"] == "halt" and not r.json()["replayed"]
