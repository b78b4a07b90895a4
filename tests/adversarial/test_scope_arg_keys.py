"""Attack class: a per-argument counter (``scope S by args.A``) keyed by what the agent sends.

Invariants attacked: a budget or rate counted per an argument never lets one value share (or
exhaust) another value's counter: the string ``"1"``, the integer ``1`` and ``true`` are three
values (a key built from ``str(value)``, or a Python dict where ``True == 1``, would merge them);
ids are exact (``"acme"``, ``"acme "``, ``"ACME"`` are three payees, as documented); an argument
that cannot key a counter (missing, null, a double, a list, a map) fails the boundary closed
instead of landing in one shared counter; a huge value keeps the store key short; the value
itself (which may be a ``secret`` argument) never appears in the decision. On every store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.adversarial.engine_side import BACKENDS, Clock, engine_on

import charter
from charter.enums import Outcome

POLICY = """
policy per-vendor
units USD
tool pay { }
tool pay.secret { arg vendor: string secret  arg amount: double }
permit payments {
  action call pay, pay.secret
  reason "Payments."
}
rate vendor-hourly {
  scope global by args.vendor
  action call pay, pay.secret
  limit 2 per 1h
  reason "At most 2 payments to one vendor an hour, whoever pays."
}
"""


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[charter.Engine, Clock]]:
    yield from engine_on(request.param, tmp_path, POLICY)


def _pay(engine: charter.Engine, args: dict[str, Any], actor: str = "a", target: str = "pay") -> Any:
    return engine.decide({"actor": {"id": actor}, "action": {"target": target, "args": args}})


def _exhaust(engine: charter.Engine, vendor: Any, actor: str = "victim") -> None:
    for _ in range(2):
        assert _pay(engine, {"vendor": vendor}, actor).outcome is Outcome.ALLOW
    assert _pay(engine, {"vendor": vendor}, actor).outcome is Outcome.DENY


@pytest.mark.parametrize(
    ("spent", "other"),
    [("1", 1), (1, "1"), (True, 1), (1, True), ("true", True), (0, False), ("", 0), ("0", 0)],
    ids=repr,
)
def test_one_type_never_shares_another_types_counter(
    engine: tuple[charter.Engine, Clock], spent: Any, other: Any
) -> None:
    e, _ = engine
    _exhaust(e, spent)
    assert _pay(e, {"vendor": other}, "attacker").outcome is Outcome.ALLOW


@pytest.mark.parametrize("other", ["acme ", "ACME", " acme", "acme\u200b", "ａｃｍｅ"], ids=repr)
def test_ids_are_exact(engine: tuple[charter.Engine, Clock], other: str) -> None:
    e, _ = engine
    _exhaust(e, "acme")
    # another spelling is another vendor (documented): it has its own counter, and it does not
    # reset or share acme's
    assert _pay(e, {"vendor": other}).outcome is Outcome.ALLOW
    assert _pay(e, {"vendor": "acme"}).outcome is Outcome.DENY


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"vendor": None},
        {"vendor": 1.0},
        {"vendor": 2.5},
        {"vendor": ["acme"]},
        {"vendor": {"id": "acme"}},
    ],
    ids=repr,
)
def test_an_argument_that_cannot_key_a_counter_fails_closed(
    engine: tuple[charter.Engine, Clock], args: dict[str, Any]
) -> None:
    e, _ = engine
    for _ in range(4):  # never one shared counter: every such call is refused, none is counted
        d = _pay(e, args)
        assert d.outcome is Outcome.DENY
        assert [f.where for f in d.failures] == ["rate vendor-hourly"]
    assert _pay(e, {"vendor": "acme"}).outcome is Outcome.ALLOW


def test_a_huge_value_keeps_the_key_short_and_never_shows_a_secret(
    engine: tuple[charter.Engine, Clock],
) -> None:
    e, _ = engine
    big = "s3cr3t-" + "v" * (100 * 1024)
    for _ in range(2):
        d = _pay(e, {"vendor": big, "amount": 1.0}, target="pay.secret")
        assert d.outcome is Outcome.ALLOW
        (check,) = d.boundaries
        assert check.scope == "global by args.vendor" and len(check.key or "") < 64
        assert "s3cr3t" not in json.dumps(d.to_dict())
    assert _pay(e, {"vendor": big[:-1] + "w", "amount": 1.0}, target="pay.secret").outcome is Outcome.ALLOW
    assert _pay(e, {"vendor": big, "amount": 1.0}, target="pay.secret").outcome is Outcome.DENY
