"""Attack class: spends below the budget's resolution (a micro-unit), each too small to count.

Invariant attacked: a positive spend always counts. Budgets keep integer micro-units; rounded to
the nearest, a cost, an ``amount`` or a settlement under half a micro-unit counted 0, so any
number of them passed a budget (a token-priced call is well under a micro-dollar). A spend is
rounded up instead, and an amount the caller writes in whole micro-units counts exactly; on
every store and over the sidecar's real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.adversarial.engine_side import BACKENDS, POLICY, Clock, Http, budget_line, engine_on, http_for

import charter
from charter.engine.stateful import micros
from charter.enums import Outcome

TINY = [4e-7, 5e-7, 5e-324, 1e-9]

AMOUNTS = """
policy tiny
units USD
tool refund { arg amount: double }
permit refund {
  action call refund
  reason "Refunds."
}
budget refunds {
  scope agent
  action call refund
  amount args.amount
  limit 0.000002 USD per day
  reason "Two micro-dollars of refunds a day."
}
"""


def _pay(amount: float) -> dict[str, Any]:
    return {
        "actor": {"id": "payments-agent"},
        "action": {"target": "pay", "args": {"amount": amount, "to": "acme"}},
        "cost": {"USD": amount},
    }


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[charter.Engine, Clock]]:
    yield from engine_on(request.param, tmp_path)


@pytest.mark.parametrize("amount", TINY, ids=repr)
def test_a_tiny_cost_counts(engine: tuple[charter.Engine, Clock], amount: float) -> None:
    e, _ = engine
    d = e.decide(_pay(amount))
    assert d.outcome is Outcome.ALLOW
    assert budget_line(e, d) == (0, 1)  # one micro-unit held, not nothing
    e.settle(d.id, actual_cost={"USD": amount})
    assert budget_line(e, d) == (1, 0)


def test_tiny_settlements_add_up(engine: tuple[charter.Engine, Clock]) -> None:
    e, _ = engine
    for _ in range(5):
        d = e.decide(_pay(0.0))
        e.settle(d.id, actual_cost={"USD": 4e-7})
    assert budget_line(e, d) == (5, 0)


def test_amounts_of_whole_micro_units_count_exactly() -> None:
    for amount, want in ((0.1, 100_000), (0.07, 70_000), (12.5, 12_500_000), (1e9, 10**15), (0.0, 0)):
        assert micros(amount) == want
    assert micros(1.0000001) == 1_000_001  # a part of a micro-unit counts as one


def test_an_argument_amount_cannot_slip_under_its_budget(engine: tuple[charter.Engine, Clock]) -> None:
    e, _ = engine
    e = charter.Engine(charter.loads(AMOUNTS), store=e.store, clock=e.clock)
    refund = {"actor": {"id": "r"}, "action": {"target": "refund", "args": {"amount": 4e-7}}}
    outcomes = [e.decide(refund).outcome for _ in range(4)]
    assert outcomes == [Outcome.ALLOW, Outcome.ALLOW, Outcome.DENY, Outcome.DENY]


# ---- over the sidecar's real HTTP ------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    yield from http_for(tmp_path_factory, POLICY)


def test_http_a_tiny_cost_is_held(http: Http) -> None:
    d = http.post("/v1/decide", _pay(4e-7)).json()
    assert d["outcome"] == "allow"
    line = next(b for b in d["boundaries"] if b["kind"] == "budget")
    assert line["reserved"] + line["amount"] >= 1e-6, line
