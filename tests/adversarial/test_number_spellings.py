"""Attack class: one number spelled several ways (``1``/``1.0``, ``0``/``0.0``/``-0.0``, ``100``/``1e2``).

Invariant attacked: a counter keyed by what a request says counts a value once, however the
number is spelled. Conditions compare numbers by value (CEL: ``1 == 1.0``, ``-0.0 == 0.0``), so
the repeated-call tripwire does too: an agent repeating one call cannot stay under it by
alternating the spellings of an argument, on every store and over the sidecar's real HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.adversarial.engine_side import BACKENDS, Clock, Http, engine_on, serve

import charter
from charter.enums import Outcome

POLICY = """
policy spellings
units USD
tool lookup { }
tool typed { arg n: double }
permit lookups {
  action call lookup, typed
  reason "Lookups."
}
tripwire same-call {
  trigger repeated call more than 3 times within 1h
  reason "The same call again and again."
}
"""

#: spellings of one value, as JSON would carry them (args of an undeclared tool keep their type)
SPELLINGS: list[list[Any]] = [
    [1, 1.0],
    [0, 0.0, -0.0],
    [100, 100.0, 1e2],
    [{"n": [2, {"m": 3}]}, {"n": [2.0, {"m": 3.0}]}],
    [2**62, float(2**62)],  # beyond 2**53 a float is still an exact integer
]


def _call(target: str, value: Any) -> dict[str, Any]:
    return {"actor": {"id": "a"}, "action": {"target": target, "args": {"n": value}}}


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[charter.Engine, Clock]]:
    yield from engine_on(request.param, tmp_path, POLICY)


@pytest.mark.parametrize("target", ["lookup", "typed"])
@pytest.mark.parametrize("forms", SPELLINGS[:3], ids=repr)
def test_alternating_spellings_are_one_repeated_call(
    engine: tuple[charter.Engine, Clock], target: str, forms: list[Any]
) -> None:
    e, _ = engine
    outcomes = [e.decide(_call(target, forms[i % len(forms)])).outcome for i in range(6)]
    assert outcomes[:3] == [Outcome.ALLOW] * 3
    assert Outcome.ALLOW not in outcomes[3:], outcomes


@pytest.mark.parametrize("forms", SPELLINGS[3:], ids=repr)
def test_nested_and_large_spellings_are_one_repeated_call(forms: list[Any]) -> None:
    e = charter.Engine(charter.loads(POLICY), clock=Clock())
    outcomes = [e.decide(_call("lookup", forms[i % len(forms)])).outcome for i in range(6)]
    assert Outcome.ALLOW not in outcomes[3:], outcomes


def test_different_values_are_different_calls() -> None:
    e = charter.Engine(charter.loads(POLICY), clock=Clock())
    # 2**53 + 1 and the float 2**53 it rounds to are two calls: CEL's int/double equality is not
    # transitive there (both equal the float, not each other), so only an exact integer is one
    values: list[Any] = [1, 1.5, 2, True, "1", 1.0000001, 2**53 + 1, float(2**53)]
    assert [e.decide(_call("lookup", v)).outcome for v in values] == [Outcome.ALLOW] * len(values)


# ---- over the sidecar's real HTTP ------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    yield from serve(tmp_path_factory.mktemp("sidecar"), POLICY)


def test_http_json_spellings_are_one_repeated_call(http: Http) -> None:
    forms = ["1", "1.0", "1e0", "10E-1"]
    outcomes = []
    for i in range(6):
        n = forms[i % 4]
        raw = '{"actor": {"id": "h"}, "action": {"target": "lookup", "args": {"n": ' + n + "}}}"
        r = http.post("/v1/decide", None, raw=raw)
        assert r.status_code == 200, r.text
        outcomes.append(json.loads(r.text)["outcome"])
    assert outcomes[:3] == ["allow"] * 3 and "allow" not in outcomes[3:], outcomes
