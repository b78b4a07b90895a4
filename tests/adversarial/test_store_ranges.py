"""Attacks with numbers the stores cannot hold (issue 15, item 10; charter.compiler.ranges).

Invariants attacked: a limit or threshold that some store cannot represent exactly does not
compile (E402, at ``charter check``); every policy that compiles decides identically on every store
(memory, SQLite, Redis, PostgreSQL) at the edge of the ranges: the store contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.adversarial.engine_side import BACKENDS, engine_on

from charter.cli.main import cli
from charter.compiler.pipeline import compile_text
from charter.state.types import MAX_AMOUNT, MAX_COUNT

HEAD = 'policy p\nunits USD\ntool pay { arg amount: double }\npermit pay { action call pay  reason "r" }\n'


def _budget(limit: str) -> str:
    return (
        HEAD
        + f'budget b {{\n  scope agent\n  action call pay\n  limit {limit} USD per day\n  reason "b"\n}}\n'
    )


def _rate(limit: str) -> str:
    return HEAD + f'rate r {{\n  scope agent\n  action call pay\n  limit {limit} per 1h\n  reason "r"\n}}\n'


def _velocity(threshold: str) -> str:
    return HEAD + (
        f"tripwire v {{\n  action call pay\n  trigger spend more than {threshold} USD within 1h\n"
        '  reason "v"\n}\n'
    )


def _codes(text: str) -> list[str]:
    return [d.code.value for d in compile_text(text).errors]


TOO_BIG = ["999999999999999999", str(MAX_AMOUNT + 1), "1" + "0" * 40, f"{MAX_AMOUNT}.000001"]
TOO_MANY = ["99999999999999999999", str(MAX_COUNT + 1), "9" * 30]


@pytest.mark.parametrize("limit", TOO_BIG)
def test_a_budget_limit_the_stores_cannot_hold_does_not_compile(limit: str) -> None:
    assert _codes(_budget(limit)) == ["E402"]


@pytest.mark.parametrize("limit", TOO_MANY)
def test_a_rate_limit_the_stores_cannot_hold_does_not_compile(limit: str) -> None:
    assert _codes(_rate(limit)) == ["E402"]


@pytest.mark.parametrize("threshold", TOO_BIG)
def test_a_velocity_threshold_the_stores_cannot_hold_does_not_compile(threshold: str) -> None:
    assert "E402" in _codes(_velocity(threshold))


@pytest.mark.parametrize("limit", ["0", "1", str(MAX_AMOUNT), "0.000001"])
def test_limits_within_the_range_compile(limit: str) -> None:
    assert _codes(_budget(limit)) == []


def test_charter_check_reports_the_range(tmp_path: Path) -> None:
    (tmp_path / "p.charter").write_text(_budget("999999999999999999"))
    r = CliRunner().invoke(cli, ["check", str(tmp_path / "p.charter")])
    assert r.exit_code == 2 and "E402" in r.output and "Traceback" not in r.output


@settings(max_examples=60, deadline=None)
@given(amount=st.decimals(min_value=0, max_value=Decimal(10) ** 30, allow_nan=False, places=0))
def test_the_range_check_is_the_boundary(amount: Decimal) -> None:
    codes = _codes(_budget(str(amount)))
    assert (codes == ["E402"]) == (amount > MAX_AMOUNT), (amount, codes)


# ---- the store contract: identical decisions at the edges, on every store ---------------------

EDGE = _budget(str(MAX_AMOUNT)) + (
    'rate r {\n  scope agent\n  action call pay\n  limit 3 per 1h\n  reason "r"\n}\n'
)


def _pay(amount: float) -> dict[str, Any]:
    return {
        "actor": {"id": "ag"},
        "action": {"target": "pay", "args": {"amount": amount}},
        "cost": {"USD": amount},
    }


SEQUENCES: dict[str, list[float]] = {
    "the whole budget at once": [float(MAX_AMOUNT), 1.0],
    "just over the budget": [float(MAX_AMOUNT) - 1.0, 2.0],
    "micro amounts": [0.000001, 0.000001, 0.000001],
    "zero cost": [0.0, 0.0, 0.0, 0.0],
    "rate edge": [1.0, 1.0, 1.0, 1.0],
}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _outcomes(backend: str, tmp_path: Path, amounts: list[float]) -> Iterator[tuple[str, Any]]:
    """(outcome, budget line after) per decision; the budget line is read by the key the first
    decision consulted."""
    key: str | None = None
    for engine, _ in engine_on(backend, tmp_path, EDGE):
        for amount in amounts:
            d = engine.decide(_pay(amount))
            key = key or next((b.key for b in d.boundaries if b.kind == "budget" and b.key), None)
            line = engine.store.budget_status([key], now=engine.clock())[key] if key else None
            yield d.outcome.value, line


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_every_store_decides_the_edges_like_memory(backend: str, tmp_path: Path, name: str) -> None:
    want = list(_outcomes("memory", tmp_path / "m", SEQUENCES[name]))
    (tmp_path / "m").mkdir(exist_ok=True)
    got = list(_outcomes(backend, tmp_path, SEQUENCES[name]))
    assert got == want, (backend, name)
    assert all(o in ("allow", "deny") for o, _ in got)
