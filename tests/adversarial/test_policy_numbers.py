"""Attacks on the numbers a policy author writes for the state stores to hold.

Invariants attacked: a budget limit or spend threshold that is negative (a typo that would deny,
or trip on, every action without a word) or finer than the micro-unit the stores count money in
(``0.0000001 USD`` would silently become 0) does not compile (E402); a literal of thousands of
digits is refused with a short message, never repeated whole.
"""

from __future__ import annotations

import pytest

from charter.compiler.pipeline import compile_text
from charter.diagnostics import Code

HEAD = "policy p\nunits USD\n"


def _codes(body: str) -> list[tuple[str, str]]:
    res = compile_text(HEAD + body)
    return [(d.code.value, d.message) for d in res.diagnostics if d.is_error]


@pytest.mark.parametrize("limit", ["-5", "-0.5", "-1_000"])
def test_a_negative_budget_limit_does_not_compile(limit: str) -> None:
    errs = _codes(f'budget b {{\n  scope agent\n  limit {limit} USD per day\n  reason "r"\n}}\n')
    assert errs == [(Code.E402_BAD_VALUE.value, "a limit cannot be negative")]


def test_a_negative_spend_threshold_does_not_compile() -> None:
    body = 'tripwire t {\n  trigger spend more than -100 USD within 1m\n  then deny\n  reason "r"\n}\n'
    assert _codes(body) == [(Code.E402_BAD_VALUE.value, "a threshold cannot be negative")]


@pytest.mark.parametrize("limit", ["0.0000001", "1.0000005", "0.0000000000000000000001"])
def test_a_limit_finer_than_a_micro_unit_does_not_compile(limit: str) -> None:
    errs = _codes(f'budget b {{\n  scope agent\n  limit {limit} USD per day\n  reason "r"\n}}\n')
    assert len(errs) == 1 and errs[0][0] == Code.E402_BAD_VALUE.value and "finer" in errs[0][1]


@pytest.mark.parametrize("limit", ["0", "-0", "0.000001", "1.5000000", "999999999.999999", "1_000_000_000"])
def test_limits_the_stores_hold_exactly_still_compile(limit: str) -> None:
    assert _codes(f'budget b {{\n  scope agent\n  limit {limit} USD per day\n  reason "r"\n}}\n') == []


def test_a_huge_literal_is_refused_with_a_short_message() -> None:
    errs = _codes(f'budget b {{\n  scope agent\n  limit {"9" * 100_000} USD per day\n  reason "r"\n}}\n')
    assert len(errs) == 1 and errs[0][0] == Code.E402_BAD_VALUE.value
    assert len(errs[0][1]) < 200, errs[0][1][:300]
