"""Spend from arguments (issue 18, phase B step 2): ``amount CEL`` in budgets and spend tripwires."""

from __future__ import annotations

from typing import Any

import charter
from charter.compiler.pipeline import compile_text
from charter.engine.engine import Engine
from charter.enums import Outcome
from charter.syntax import parse_text
from charter.syntax.printer import format_text

POLICY = """
units EUR
const refund_cap = 200.0
tool bank.refund { arg amount: double  arg case: string }
tool bank.pay { arg amount: double  arg cents: int }
permit refunds {
  action call bank.refund
  reason "Refunds."
}
permit pays {
  action call bank.pay
  reason "Payments."
}
budget refund-cap {
  scope agent
  action call bank.refund
  amount args.amount
  limit 200 EUR per day
  reason "At most 200 EUR of refunds a day, counted from the amount claimed."
}
tripwire payout-velocity {
  action call bank.pay
  amount args.amount + double(args.cents) / 100.0
  trigger spend more than 300 EUR within 1h
  then halt agent
  reason "Paying out faster than 300 EUR an hour halts the agent."
}
"""


def _decide(engine: Engine, target: str, args: dict[str, Any], actor: str = "a") -> Any:
    return engine.decide({"actor": {"id": actor}, "action": {"kind": "call", "target": target, "args": args}})


def test_the_clause_parses_formats_and_round_trips() -> None:
    module = parse_text(POLICY).module
    assert module is not None
    out = format_text(POLICY)
    assert out is not None
    assert "  amount args.amount\n" in out
    assert format_text(out) == out
    assert parse_text(out).module == module


def test_a_budget_counts_the_argument_and_the_tightest_day_wins() -> None:
    engine = Engine(charter.loads(POLICY))
    first = _decide(engine, "bank.refund", {"amount": 150.0, "case": "c1"})
    assert first.outcome is Outcome.ALLOW
    (line,) = [b.to_dict() for b in first.boundaries]
    assert (line["id"], line["amount"], line["limit"], line["unit"]) == ("refund-cap", 150.0, 200.0, "EUR")
    assert _decide(engine, "bank.refund", {"amount": 50.0, "case": "c2"}).outcome is Outcome.ALLOW
    over = _decide(engine, "bank.refund", {"amount": 0.5, "case": "c3"})
    assert over.outcome is Outcome.DENY
    assert [b.to_dict()["ok"] for b in over.boundaries] == [False]
    # another agent has its own day
    assert _decide(engine, "bank.refund", {"amount": 150.0, "case": "c4"}, actor="b").outcome is Outcome.ALLOW


def test_the_reserved_amount_is_committed_at_settlement_and_a_refused_one_is_released() -> None:
    engine = Engine(charter.loads(POLICY))
    d = _decide(engine, "bank.refund", {"amount": 120.0, "case": "c1"})
    engine.settle(d.id)
    again = _decide(engine, "bank.refund", {"amount": 80.0, "case": "c2"})
    assert again.outcome is Outcome.ALLOW
    assert again.boundaries[0].to_dict()["used"] + again.boundaries[0].to_dict()["reserved"] == 120.0


def test_a_spend_tripwire_counts_the_amount_at_settlement_and_trips() -> None:
    engine = Engine(charter.loads(POLICY))
    for amount, cents in ((200.0, 0), (100.0, 50)):
        d = _decide(engine, "bank.pay", {"amount": amount, "cents": cents})
        assert d.outcome is Outcome.ALLOW
        st = engine.settle(d.id)
        assert list(st.failures) == []
    assert _decide(engine, "bank.pay", {"amount": 1.0, "cents": 0}).outcome is Outcome.HALT


def test_under_the_threshold_nothing_trips() -> None:
    engine = Engine(charter.loads(POLICY))
    for _ in range(3):
        d = _decide(engine, "bank.pay", {"amount": 99.0, "cents": 99})
        engine.settle(d.id)
    assert _decide(engine, "bank.pay", {"amount": 1.0, "cents": 0}).outcome is Outcome.ALLOW


def test_amount_must_be_a_number_and_only_spend_tripwires_take_it() -> None:
    not_number = POLICY.replace("  amount args.amount\n", "  amount args.case\n")
    assert [d.code.value for d in compile_text(not_number).diagnostics if d.is_error] == ["E303"]
    on_repeat = (
        "tool t { arg n: int }\ntripwire loop {\n  action call t\n  amount args.n\n"
        '  trigger repeated call more than 3 times within 1m\n  reason "r"\n}\n'
    )
    assert [d.code.value for d in compile_text(on_repeat).diagnostics if d.is_error] == ["E402"]
    on_rate = (
        'tool t { arg n: int }\nrate r {\n  scope agent\n  amount args.n\n  limit 3 per 1m\n  reason "r"\n}\n'
    )
    assert [d.code.value for d in compile_text(on_rate).diagnostics if d.is_error] == ["E106"]


def test_amount_may_use_constants_and_named_conditions() -> None:
    text = POLICY.replace(
        "  amount args.amount\n", "  amount args.amount > refund_cap ? refund_cap : args.amount\n"
    )
    engine = Engine(charter.loads(text))
    d = _decide(engine, "bank.refund", {"amount": 5000.0, "case": "c1"})
    assert d.boundaries[0].to_dict()["amount"] == 200.0
