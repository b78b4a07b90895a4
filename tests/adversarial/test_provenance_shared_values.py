"""Attack: an untrusted label lost on a short value (a one-character text, a small integer, a boolean).

Python shares these objects, so labels() cannot tell an argument's value from an equal one a
condition computes. Before the fix labels() gave [] for them, so a rule that looks for a bad label
(``"untrusted" in labels(args.x)``) read its absence and let the value through.
"""

from __future__ import annotations

import pytest

import charter
from charter import Engine, Outcome

POLICY = """
tool pay { arg amount: int  arg note: string  arg urgent: bool }
permit p {
  action call pay
  reason "Payments."
}
forbid untrusted-amount {
  action call pay
  when "untrusted" in labels(args.amount) || "untrusted" in labels(args.note) ||
       "untrusted" in labels(args.urgent)
  reason "Nothing a payment carries comes from untrusted content."
}
forbid untrusted-source {
  action call pay
  when sources(args.amount).exists(s, s.kind == "call")
  reason "The amount is never taken from a result."
}
"""


def _decide(args: dict[str, object], action: dict[str, object]) -> charter.Decision:
    eng = Engine(charter.loads(POLICY))
    return eng.decide({"actor": {"id": "a"}, "action": {"target": "pay", "args": args, **action}})


@pytest.mark.parametrize(
    ("args", "labelled"),
    [
        ({"amount": 100, "note": "invoice 7", "urgent": False}, "amount"),
        ({"amount": 5000, "note": "x", "urgent": False}, "note"),
        ({"amount": 5000, "note": "invoice 7", "urgent": True}, "urgent"),
    ],
)
def test_a_labelled_short_value_fails_the_rule_closed(args: dict[str, object], labelled: str) -> None:
    d = _decide(args, {"labels": {labelled: ["untrusted"]}})
    assert d.outcome is Outcome.DENY
    assert "untrusted-amount" in [h.id for h in d.rules]


def test_a_short_value_from_a_call_is_not_sourceless() -> None:
    d = _decide(
        {"amount": 100, "note": "invoice 7", "urgent": False},
        {"provenance": {"amount": {"sources": [{"call": "r1:fetch", "field": "total"}]}}},
    )
    assert d.outcome is Outcome.DENY


def test_short_values_without_provenance_still_have_none() -> None:
    d = _decide({"amount": 100, "note": "x", "urgent": True}, {})
    assert d.outcome is Outcome.ALLOW
    assert not d.failures
