"""Attacks on settle and on a request's cost: amounts are finite, non-negative, within the stores' range
and in units the policy declares (issue 15 item 2; docs/semantics.md §10).

Invariant attacked: a settlement or a cost that breaks a rule is refused with a typed error naming the
field (422 over HTTP), and the budget is untouched: the decision can still be settled correctly. On
every store and over the sidecar's real HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from tests.adversarial.engine_side import (
    BACKENDS,
    HOSTILE,
    POLICY,
    Clock,
    Http,
    budget_line,
    engine_on,
    http_for,
    pay,
)

import charter

BAD_ACTUALS: list[Any] = [
    {"USD": -1000.0},
    {"USD": -0.000001},
    {"USD": math.nan},
    {"USD": math.inf},
    {"USD": -math.inf},
    {"USD": 1e30},
    {"USD": 2**70},
    {"USD": True},
    {"USD": "12"},
    {"USD": None},
    {"EUR": 5.0},
    {"USD": 5.0, "EUR": 5.0},
    {"": 5.0},
    -1.0,
    math.nan,
    math.inf,
    1e30,
    "5",
    [5.0],
]


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[charter.Engine, Clock]]:
    yield from engine_on(request.param, tmp_path)


@pytest.mark.parametrize("actual", BAD_ACTUALS, ids=repr)
def test_a_bad_actual_cost_is_refused_and_the_budget_is_untouched(
    engine: tuple[charter.Engine, Clock], actual: Any
) -> None:
    e, _ = engine
    d = e.decide(pay(100.0))
    assert d.allowed and d.hold_id
    before = budget_line(e, d)
    with pytest.raises(charter.RequestError) as exc:
        e.settle(d.id, actual_cost=actual)
    assert type(exc.value).__name__ == "SettleError" and exc.value.field is not None
    assert exc.value.field.startswith("actual_cost")
    assert budget_line(e, d) == before  # nothing committed, nothing released
    st = e.settle(d.id, actual_cost={"USD": 40.0})  # the decision can still be settled
    assert st.committed
    assert budget_line(e, d) == (40_000_000, 0)


@pytest.mark.parametrize(
    ("outcome", "labels"),
    [("", ()), ("x" * 300, ()), ("success", ("",)), ("success", ("l" * 300,)), ("success", "untrusted")],
)
def test_a_bad_result_or_label_is_refused(
    engine: tuple[charter.Engine, Clock], outcome: str, labels: Any
) -> None:
    e, _ = engine
    d = e.decide(pay(10.0))
    before = budget_line(e, d)
    with pytest.raises(charter.RequestError):
        e.settle(d.id, actual_cost={"USD": 5.0}, outcome=outcome, labels=labels)
    assert budget_line(e, d) == before
    assert e.settle(d.id, actual_cost={"USD": 5.0}).committed


@pytest.mark.parametrize(
    "cost",
    [
        {"EUR": 5.0},
        {"USD": -5.0},
        {"USD": math.nan},
        {"USD": math.inf},
        {"USD": 1e30},
        {"USD": 5.0, "GBP": 1.0},
        {"USD": True},
    ],
    ids=repr,
)
def test_a_request_cost_that_breaks_a_rule_is_refused_before_anything_is_held(
    engine: tuple[charter.Engine, Clock], cost: dict[str, Any]
) -> None:
    e, _ = engine
    good = e.decide(pay(1.0))
    before = budget_line(e, good)
    with pytest.raises(charter.RequestError) as exc:
        e.decide({**pay(1.0), "cost": cost})
    assert exc.value.field is not None and exc.value.field.startswith("cost")
    assert budget_line(e, good) == before


def test_settling_an_unknown_or_settled_decision_is_a_typed_error(
    engine: tuple[charter.Engine, Clock],
) -> None:
    e, _ = engine
    d = e.decide(pay(10.0))
    e.settle(d.id, actual_cost={"USD": 10.0})
    for did in (d.id, "d-000000000000-000000000001", "nope"):
        with pytest.raises(charter.Error) as exc:
            e.settle(did, actual_cost={"USD": 1.0})
        assert isinstance(exc.value, KeyError) and type(exc.value).__name__ == "UnknownDecision"
        assert "unknown or already settled" in str(exc.value)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.parametrize("shape", ["mapping", "bare"])
@given(amount=HOSTILE)
def test_hostile_numbers_never_commit(shape: str, amount: Any) -> None:
    e = charter.Engine(charter.loads(POLICY), clock=Clock())
    d = e.decide(pay(100.0))
    before = budget_line(e, d)
    actual: Any = {"USD": amount} if shape == "mapping" else amount
    ok = not isinstance(amount, bool) and math.isfinite(amount) and 0 <= amount <= 1e9
    try:
        st = e.settle(d.id, actual_cost=actual)
    except charter.RequestError:
        assert not ok, f"a valid amount {amount!r} was refused"
        assert budget_line(e, d) == before
        return
    assert ok, f"{amount!r} was committed"
    assert st.committed


# ---- over the sidecar's real HTTP ------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    yield from http_for(tmp_path_factory)


@pytest.mark.parametrize(
    "raw_actual",
    [
        '{"USD": -1000}',
        '{"USD": NaN}',
        '{"USD": Infinity}',
        '{"USD": -Infinity}',
        '{"USD": 1e30}',
        '{"EUR": 5}',
        "NaN",
        "1e400",
        "-1",
    ],
)
def test_http_a_bad_settlement_is_422_and_changes_nothing(http: Http, raw_actual: str) -> None:
    d = http.post("/v1/decide", pay(10.0)).json()
    assert d["outcome"] == "allow"
    raw = f'{{"decision_id": "{d["id"]}", "actual_cost": {raw_actual}}}'
    r = http.post("/v1/settle", None, raw=raw)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "malformed" and (r.json()["field"] or "").startswith("actual_cost")
    ok = http.post("/v1/settle", {"decision_id": d["id"], "actual_cost": {"USD": 4.0}})
    assert ok.status_code == 200 and ok.json()["committed"] is True


@pytest.mark.parametrize(
    "cost", ['{"EUR": 5}', '{"USD": -5}', '{"USD": NaN}', '{"USD": 1e400}', '{"USD": 1e30}']
)
def test_http_a_bad_request_cost_is_422(http: Http, cost: str) -> None:
    raw = (
        '{"actor": {"id": "payments-agent"}, "action": {"target": "pay", "args": {"amount": 5}}, "cost": '
        + cost
        + "}"
    )
    r = http.post("/v1/decide", None, raw=raw)
    assert r.status_code == 422, r.text
    assert (r.json()["field"] or "").startswith("cost")


def test_http_settling_an_unknown_decision_is_404(http: Http) -> None:
    r = http.post("/v1/settle", {"decision_id": "d-000000000000-000000000009", "actual_cost": {"USD": 1.0}})
    assert r.status_code == 404 and r.json()["code"] == "unknown"
