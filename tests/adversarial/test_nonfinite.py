"""Attacks with NaN and Infinity anywhere in a request (issue 15 item 3; docs/semantics.md §10).

Invariant attacked: JSON has no NaN or Infinity; a request holding one anywhere (arguments, actor
attributes, context, cost, signals) is refused by the one request validator with a typed
RequestError naming the field (422 over HTTP, exit 2 from ``charter eval``), so no comparison with
it can let an action through a gate. No traceback, no 5xx, never an allow.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.adversarial.engine_side import HOSTILE, POLICY, Clock, Http, http_for, pay

import charter

ROOT = Path(__file__).resolve().parents[2]
NONFINITE = [math.nan, math.inf, -math.inf]


def _engine() -> charter.Engine:
    return charter.Engine(charter.loads(POLICY), clock=Clock())


def _places(x: float) -> list[tuple[str, dict[str, Any]]]:
    """A payment request with ``x`` in each place a number can hide, and the field it is in."""
    base = pay(20_000.0)
    out: list[tuple[str, dict[str, Any]]] = []
    r = pay(20_000.0)
    r["action"]["args"]["amount"] = x
    out.append(("action.args.amount", r))
    r = pay(20_000.0)
    r["action"]["args"]["items"] = [1.0, {"deep": [x]}]
    out.append(("action.args.items[1].deep[0]", r))
    r = {**base, "actor": {"id": "payments-agent", "attributes": {"risk": x}}}
    out.append(("actor.attributes.risk", r))
    r = {**base, "context": {"score": x}}
    out.append(("context.score", r))
    r = {**base, "context": {"nested": {"limit": [x]}}}
    out.append(("context.nested.limit[0]", r))
    r = {**base, "cost": {"USD": x}}
    out.append(("cost.USD", r))
    r = {**base, "signals": [{"source": "risk", "kind": "fraud", "score": x}]}
    out.append(("signals.0.score", r))
    return out


@pytest.mark.parametrize("x", NONFINITE, ids=repr)
@pytest.mark.parametrize("place", range(7))
def test_a_non_finite_number_anywhere_is_refused_naming_the_field(x: float, place: int) -> None:
    field, req = _places(x)[place]
    with pytest.raises(charter.RequestError) as exc:
        _engine().decide(req)
    assert exc.value.field is not None and exc.value.field.startswith(field.split("[")[0].split(".0")[0]), (
        exc.value.field,
        field,
    )


@pytest.mark.parametrize("x", NONFINITE, ids=repr)
def test_nan_cannot_pass_the_payment_gate(x: float) -> None:
    """``args.amount > 10000.0`` is false for NaN: the gate would be skipped and the payment allowed."""
    e = _engine()
    assert e.decide(pay(20_000.0)).outcome is charter.Outcome.REQUIRE_APPROVAL
    req = pay(20_000.0)
    req["action"]["args"]["amount"] = x
    with pytest.raises(charter.RequestError):
        e.decide(req)


@pytest.mark.parametrize("x", NONFINITE, ids=repr)
def test_a_model_request_with_nan_is_refused_too(x: float) -> None:
    """The Python API's pydantic Request goes through the same validator."""
    with pytest.raises(charter.RequestError):
        _engine().decide(
            charter.Request.model_validate({**pay(1.0), "action": {"target": "pay", "args": {"a": x}}})
        )


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(x=HOSTILE, place=st.integers(0, 6))
def test_hostile_numbers_anywhere_are_refused_or_decided_finitely(x: Any, place: int) -> None:
    """Either a RequestError, or a decision over finite numbers only; never an allow of NaN."""
    field, req = _places(x)[place]
    try:
        d = _engine().decide(req)
    except charter.RequestError:
        return
    bad = isinstance(x, float) and not math.isfinite(x)
    assert not bad, f"{x!r} in {field} was accepted"
    assert d.outcome in charter.Outcome


# ---- over the sidecar's real HTTP and the CLI ------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    yield from http_for(tmp_path_factory)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
@pytest.mark.parametrize(
    "where",
    [
        '{{"actor": {{"id": "payments-agent"}}, "action": {{"target": "pay", "args": {{"amount": {x}}}}}}}',
        '{{"actor": {{"id": "a1", "attributes": {{"r": {x}}}}}, "action": {{"target": "search"}}}}',
        '{{"actor": {{"id": "a"}}, "action": {{"target": "search"}}, "context": {{"k": [{x}]}}}}',
        '{{"actor": {{"id": "a"}}, "action": {{"target": "search"}}, '
        '"signals": [{{"source": "s", "kind": "k", "score": {x}}}]}}',
    ],
)
def test_http_non_finite_numbers_are_422(http: Http, token: str, where: str) -> None:
    r = http.post("/v1/decide", None, raw=where.format(x=token))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "malformed" and body["field"], body
    assert "Traceback" not in r.text


def test_eval_refuses_nan_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "p.charter").write_text(POLICY, "utf-8")
    req = tmp_path / "req.json"
    req.write_text(
        '{"actor": {"id": "payments-agent"}, "action": {"target": "pay", "args": {"amount": NaN}}}'
    )
    for extra in ([], ["--explain"], ["--format", "json"]):
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "charter",
                "eval",
                str(tmp_path / "p.charter"),
                "--request",
                str(req),
                *extra,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        assert run.returncode == 2, run.stdout + run.stderr
        assert "Traceback" not in run.stderr and "action.args.amount" in run.stderr
        assert "ALLOW" not in run.stdout


def test_json_nan_is_not_a_json_number() -> None:
    """The premise: Python's json module reads NaN and 1e400 as floats; the validator must not."""
    assert math.isnan(json.loads("NaN")) and math.isinf(json.loads("1e400"))
