"""``scope S by args.A``: budgets and rates counted per an argument's value (docs/semantics.md 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import charter
from charter.compiler.pipeline import compile_text
from charter.editing.complete import complete
from charter.editing.symbols import SymbolIndex, SymbolKind
from charter.engine.engine import Engine
from charter.engine.stateful import arg_key
from charter.enums import Outcome
from charter.errors import Error
from charter.state.sqlite import SQLiteStore
from charter.syntax import parse_text
from charter.syntax.printer import format_text

POLICY = """
units EUR
tool pay.vendor { arg vendor: string  arg amount: double }
tool pay.loose { }
permit payments {
  action call pay.vendor, pay.loose
  reason "Payments."
}
rate same-vendor {
  scope agent by args.vendor
  action call pay.vendor, pay.loose
  limit 3 per 1h
  reason "At most 3 payments to the same vendor an hour."
}
budget vendor-day {
  scope agent by args.vendor
  action call pay.vendor
  amount args.amount
  limit 100 EUR per day
  reason "At most 100 EUR a day to one vendor."
}
"""


def _decide(engine: Engine, args: dict[str, Any], target: str = "pay.vendor", actor: str = "a") -> Any:
    return engine.decide({"actor": {"id": actor}, "action": {"kind": "call", "target": target, "args": args}})


def _engines(tmp_path: Path) -> list[Engine]:
    policy = charter.loads(POLICY)
    return [Engine(policy), Engine(policy, SQLiteStore(str(tmp_path / "s.db")))]


def test_the_clause_parses_formats_and_round_trips() -> None:
    module = parse_text(POLICY).module
    assert module is not None
    out = format_text(POLICY)
    assert out is not None and "  scope agent by args.vendor\n" in out
    assert format_text(out) == out
    assert parse_text(out).module == module


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_the_same_vendor_is_counted_together_and_two_vendors_apart(tmp_path: Path, store: str) -> None:
    engine = _engines(tmp_path)[store == "sqlite"]
    for _ in range(3):
        assert _decide(engine, {"vendor": "acme", "amount": 1.0}).outcome is Outcome.ALLOW
    assert _decide(engine, {"vendor": "acme", "amount": 1.0}).outcome is Outcome.DENY
    assert _decide(engine, {"vendor": "globex", "amount": 1.0}).outcome is Outcome.ALLOW
    # another agent paying acme has its own counter (the key is the base scope plus the argument)
    assert _decide(engine, {"vendor": "acme", "amount": 1.0}, actor="b").outcome is Outcome.ALLOW


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_budget_per_vendor(tmp_path: Path, store: str) -> None:
    engine = _engines(tmp_path)[store == "sqlite"]
    assert _decide(engine, {"vendor": "acme", "amount": 90.0}).outcome is Outcome.ALLOW
    over = _decide(engine, {"vendor": "acme", "amount": 20.0})
    assert over.outcome is Outcome.DENY
    assert [(b.id, b.ok) for b in over.boundaries if b.id == "vendor-day"] == [("vendor-day", False)]
    assert _decide(engine, {"vendor": "globex", "amount": 90.0}).outcome is Outcome.ALLOW


@pytest.mark.parametrize("store", ["memory", "sqlite"])
@pytest.mark.parametrize(
    "args", [{}, {"vendor": None}, {"vendor": 1.0}, {"vendor": ["acme"]}, {"vendor": {"id": 1}}]
)
def test_an_argument_that_cannot_key_a_counter_fails_closed(tmp_path: Path, store: str, args: Any) -> None:
    engine = _engines(tmp_path)[store == "sqlite"]
    d = _decide(engine, args, target="pay.loose")
    assert d.outcome is Outcome.DENY
    assert [(f.where, f.took) for f in d.failures] == [("rate same-vendor", "deny")]
    assert "vendor" in d.failures[0].error


def test_on_error_decides_a_failed_argument() -> None:
    text = POLICY.replace("  limit 3 per 1h\n", "  limit 3 per 1h\n  on error escalate\n")
    d = _decide(Engine(charter.loads(text)), {"vendor": 2.5}, target="pay.loose")
    assert d.outcome is Outcome.ESCALATE


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_huge_value_gives_a_short_key(tmp_path: Path, store: str) -> None:
    engine = _engines(tmp_path)[store == "sqlite"]
    big = "v" * (100 * 1024)
    d = _decide(engine, {"vendor": big, "amount": 1.0})
    assert d.outcome is Outcome.ALLOW
    keys = [b.key or "" for b in d.boundaries]
    assert keys and all(len(k) < 120 and big[:64] not in k for k in keys)


def test_the_key_keeps_types_apart_and_strings_exact() -> None:
    keys = {arg_key({"v": v}, "v") for v in ("1", 1, True, "true", 0, False, "acme", "acme ", "ACME")}
    assert len(keys) == 9
    assert arg_key({"v": "acme"}, "v") == arg_key({"v": "acme"}, "v")
    assert len(arg_key({"v": "x" * 300_000}, "v")) == 32
    with pytest.raises(Error):
        arg_key({"v": 1.0}, "v")


def _codes(text: str) -> list[str]:
    return [d.code.value for d in compile_text(text).diagnostics if d.severity.value == "error"]


def test_the_compiler_checks_the_argument() -> None:
    assert _codes(POLICY) == []
    undeclared = POLICY.replace(
        "scope agent by args.vendor\n  action call pay.vendor\n",
        "scope agent by args.payee\n  action call pay.vendor\n",
    )
    assert _codes(undeclared) == ["E312"]
    ill_typed = POLICY.replace(
        "scope agent by args.vendor\n  action call pay.vendor\n",
        "scope agent by args.amount\n  action call pay.vendor\n",
    )
    assert _codes(ill_typed) == ["E312"]
    assert _codes(
        POLICY.replace("by args.vendor\n  action call pay.vendor\n", "by vendor\n  action call pay.vendor\n")
    ) == ["E312"]
    assert _codes(
        POLICY.replace(
            "by args.vendor\n  action call pay.vendor\n", "by args.vendor.id\n  action call pay.vendor\n"
        )
    ) == ["E312"]


def test_completion_offers_by_and_the_arguments() -> None:
    module = parse_text(POLICY, "p.charter").module
    assert module is not None
    index = SymbolIndex.build([module], {"p.charter": POLICY})
    text = POLICY + "rate r {\n  scope agent "
    assert "by" in [i.label for i in complete(text, len(text), index, None).items]
    text += "by "
    assert "args.vendor" in [i.label for i in complete(text, len(text), index, None).items]


def test_a_global_budget_per_argument_does_not_make_another_budget_unreachable() -> None:
    text = (
        POLICY
        + """
budget all-vendors {
  scope global by args.vendor
  action call pay.vendor
  amount args.amount
  limit 50 EUR per day
  reason "At most 50 EUR a day to one vendor, whoever pays."
}
budget agent-day {
  scope agent
  action call pay.vendor
  amount args.amount
  limit 60 EUR per day
  reason "At most 60 EUR a day per agent."
}
"""
    )
    codes = [d.code.value for d in compile_text(text).diagnostics]
    # one counter per vendor: an agent paying two vendors can pass 50 EUR, so agent-day can trip
    assert "W503" not in codes
    # ... and a per-vendor budget looser than the global total one still never trips (warned)
    total = text.replace("scope global by args.vendor", "scope global")
    assert "W503" in [d.code.value for d in compile_text(total).diagnostics]


def test_the_argument_is_a_reference_of_the_tool_argument() -> None:
    module = parse_text(POLICY, "p.charter").module
    assert module is not None
    index = SymbolIndex.build([module], {"p.charter": POLICY})
    refs = index.references((SymbolKind.TOOL_ARG, "pay.vendor/vendor"))
    spans = [POLICY[o.span.start : o.span.end] for o in refs]
    lines = [POLICY.splitlines()[o.span.line - 1].strip() for o in refs]
    assert spans == ["vendor", "vendor"]  # the rate and the budget, both selecting pay.vendor
    assert lines == ["scope agent by args.vendor"] * 2


def test_the_prover_models_a_missing_argument_and_says_what_it_cannot() -> None:
    from charter.analysis.query import reach

    text = POLICY.replace("tool pay.loose { }", "tool pay.loose { }\nagent a { }")
    declared = charter.loads(text[: text.index("budget vendor-day")])  # the rate only
    found = reach(declared, "can a call pay.vendor", "allow")
    assert found.answer.value == "counterexample" and found.witness is not None
    assert "vendor" in found.witness.concrete.request["action"]["args"]
    # an undeclared tool's argument has no known type: the prover says so rather than guess
    loose = reach(declared, "can a call pay.loose", "allow")
    assert any("counted per args.vendor" in r for r in loose.reasons or [])
