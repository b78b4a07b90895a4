"""Attack class: spend taken from arguments (``amount CEL``, issue 18 phase B step 2).

The invariant attacked: an amount the budget cannot count (negative, NaN, infinite, missing, of the
wrong type) never allows the action and never changes the budget: nothing is reserved, the failure
is recorded with the budget, and its ``on error`` decides (deny by default). A negative amount can
never refund a budget.
"""

from __future__ import annotations

from typing import Any

import pytest

import charter
from charter.engine.engine import Engine
from charter.engine.validate import RequestError
from charter.enums import Outcome

POLICY = """
units EUR
tool bank.refund { arg amount: double  arg n: int }
tool open.refund { category refund }
permit refunds {
  action call bank.refund, open.refund
  reason "Refunds."
}
budget refund-cap {
  scope agent
  action call bank.refund
  amount args.amount * double(args.n)
  limit 100 EUR per day
  reason "At most 100 EUR of refunds a day."
}
budget open-cap {
  scope agent
  action call open.refund
  amount args.amount
  limit 100 EUR per day
  reason "The same cap for a tool with no declared arguments."
}
"""


def _engine(text: str = POLICY) -> Engine:
    return Engine(charter.loads(text))


def _refund(engine: Engine, args: dict[str, Any], target: str = "bank.refund") -> Any:
    return engine.decide({"actor": {"id": "a"}, "action": {"kind": "call", "target": target, "args": args}})


def _spent(engine: Engine) -> float:
    probe = _refund(engine, {"amount": 0.0, "n": 1})
    line = probe.boundaries[0].to_dict()
    return float(line["used"] + line["reserved"])


@pytest.mark.parametrize(
    "args",
    [
        {"amount": -50.0, "n": 1},  # a negative amount would refund the budget
        {"amount": 50.0, "n": -1},
        {"amount": 1e308, "n": 10},  # overflows to infinity in the expression
        {"amount": 10.0, "n": 9223372036854775807},  # huge int * double: finite but over the cap
    ],
)
def test_an_amount_that_cannot_be_counted_or_is_over_the_cap_denies(args: dict[str, Any]) -> None:
    engine = _engine()
    before = _spent(engine)
    d = _refund(engine, args)
    assert d.outcome is Outcome.DENY
    assert _spent(engine) == before


def test_negative_and_infinite_amounts_are_failures_of_the_budget() -> None:
    engine = _engine()
    for args, word in (({"amount": -50.0, "n": 1}, "negative"), ({"amount": 1e308, "n": 10}, "finite")):
        d = _refund(engine, args)
        assert d.outcome is Outcome.DENY
        assert [f.where for f in d.failures] == ["budget refund-cap"]
        assert word in d.failures[0].error
        assert d.failures[0].took == "deny"


def test_nan_and_infinity_never_reach_the_amount() -> None:
    engine = _engine()
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(RequestError):
            _refund(engine, {"amount": bad, "n": 1})


@pytest.mark.parametrize(
    "args",
    [{}, {"amount": "50"}, {"amount": True}, {"amount": [1.0]}, {"amount": {"x": 1}}, {"amount": None}],
)
def test_a_missing_or_mistyped_argument_of_an_undeclared_tool_fails_closed(args: dict[str, Any]) -> None:
    engine = _engine()
    d = _refund(engine, args, target="open.refund")
    assert d.outcome is Outcome.DENY
    assert [f.where for f in d.failures] == ["budget open-cap"]


def test_int_and_double_amounts_both_count() -> None:
    engine = _engine()
    assert _refund(engine, {"amount": 40}, target="open.refund").outcome is Outcome.ALLOW
    assert _refund(engine, {"amount": 40.5}, target="open.refund").outcome is Outcome.ALLOW
    d = _refund(engine, {"amount": 20}, target="open.refund")
    assert d.outcome is Outcome.DENY  # 40 + 40.5 + 20 > 100


def test_on_error_ignore_lets_the_action_through_without_reserving() -> None:
    text = POLICY.replace(
        '  reason "At most 100 EUR of refunds a day."\n', '  on error ignore\n  reason "r"\n', 1
    )
    engine = _engine(text)
    d = _refund(engine, {"amount": -5.0, "n": 1})
    assert d.outcome is Outcome.ALLOW
    assert d.failures[0].took.startswith("ignore")
    assert _spent(engine) == 0.0


def test_a_shadow_budget_records_the_failure_and_never_denies() -> None:
    text = POLICY.replace(
        '  reason "At most 100 EUR of refunds a day."\n', '  mode shadow\n  reason "r"\n', 1
    )
    d = _refund(_engine(text), {"amount": -5.0, "n": 1})
    assert d.outcome is Outcome.ALLOW
    assert d.failures[0].took == "none (shadow)"
