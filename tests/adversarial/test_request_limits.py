"""Attacks on the size of a request: nesting, string lengths, item counts, ids, integers (issue 15;
docs/semantics.md §10).

Invariant attacked: every request the one validator accepts is within the documented limits; one
past a limit is refused with a RequestError naming the field (422 or 413 over HTTP), quickly, without
a RecursionError, a traceback or a 5xx; one just within is decided.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.adversarial.engine_side import POLICY, Clock, Http, http_for

import charter
from charter.engine.validate import LIMITS

SEARCH = {"actor": {"id": "payments-agent"}, "action": {"target": "search"}}


def _engine() -> charter.Engine:
    return charter.Engine(charter.loads(POLICY), clock=Clock())


def _nested(depth: int, leaf: Any = 1, dicts: bool = False) -> Any:
    v = leaf
    for _ in range(depth):
        v = {"k": v} if dicts else [v]
    return v


def _with_args(args: dict[str, Any]) -> dict[str, Any]:
    return {**SEARCH, "action": {"target": "search", "args": args}}


OVER: list[tuple[str, dict[str, Any], str]] = [
    ("list nesting", _with_args({"x": _nested(LIMITS.max_depth + 1)}), "action.args.x"),
    ("dict nesting", _with_args({"x": _nested(LIMITS.max_depth + 1, dicts=True)}), "action.args.x"),
    ("nesting 5,000 deep", _with_args({"x": _nested(5000)}), "action.args.x"),
    (
        "attributes nesting",
        {**SEARCH, "actor": {"id": "a", "attributes": {"x": _nested(40)}}},
        "actor.attributes.x",
    ),
    ("context nesting", {**SEARCH, "context": {"x": _nested(40, dicts=True)}}, "context.x"),
    ("too many values", _with_args({"xs": list(range(LIMITS.max_values))}), "action.args"),
    ("too many keys", _with_args({f"k{i}": i for i in range(LIMITS.max_values + 1)}), "action.args"),
    ("a long string", _with_args({"s": "x" * (LIMITS.max_string + 1)}), "action.args.s"),
    ("a long key", _with_args({"k" * (LIMITS.max_string + 1): 1}), "action.args"),
    ("a huge integer", _with_args({"n": 10**30}), "action.args.n"),
    ("2**63", _with_args({"n": 2**63}), "action.args.n"),
    ("a long actor id", {**SEARCH, "actor": {"id": "a" * (LIMITS.max_id + 1)}}, "actor.id"),
    ("an empty actor id", {**SEARCH, "actor": {"id": ""}}, "actor.id"),
    ("a long target", {**SEARCH, "action": {"target": "t" * (LIMITS.max_id + 1)}}, "action.target"),
    (
        "too many roles",
        {**SEARCH, "actor": {"id": "a", "roles": ["r"] * (LIMITS.max_items + 1)}},
        "actor.roles",
    ),
    ("a long role", {**SEARCH, "actor": {"id": "a", "roles": ["r" * (LIMITS.max_id + 1)]}}, "actor.roles"),
    (
        "a long chain",
        {**SEARCH, "actor": {"id": "a", "chain": ["c"] * (LIMITS.max_items + 1)}},
        "actor.chain",
    ),
    (
        "too many labels",
        {**SEARCH, "action": {"target": "search", "labels": {"x": ["l"] * (LIMITS.max_items + 1)}}},
        "action.labels",
    ),
    (
        "too many signals",
        {**SEARCH, "signals": [{"source": "s", "kind": "k"}] * (LIMITS.max_items + 1)},
        "signals",
    ),
    ("a long run id", {**SEARCH, "context": {"run": "r" * (LIMITS.max_id + 1)}}, "context.run"),
    ("too many cost units", {**SEARCH, "cost": {f"u{i}": 1.0 for i in range(LIMITS.max_items + 1)}}, "cost"),
    ("a long idempotency key", {**SEARCH, "idempotency_key": "k" * (LIMITS.max_id + 1)}, "idempotency_key"),
    ("an object as an argument", _with_args({"x": object()}), "action.args.x"),
    ("a set as an argument", _with_args({"x": {1, 2}}), "action.args.x"),
    ("bytes as an argument", _with_args({"x": b"raw"}), "action.args.x"),
]


@pytest.mark.parametrize(("what", "req", "field"), OVER, ids=[o[0] for o in OVER])
def test_a_request_past_a_limit_is_refused_quickly_naming_the_field(what: str, req: Any, field: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(charter.RequestError) as exc:
        _engine().decide(req)
    assert time.perf_counter() - t0 < 2.0, f"{what}: refusing took too long"
    assert exc.value.field is not None and exc.value.field.startswith(field), (
        what,
        exc.value.field,
        exc.value,
    )


WITHIN: list[tuple[str, dict[str, Any]]] = [
    ("nesting at the limit", _with_args({"x": _nested(LIMITS.max_depth - 2)})),
    ("values within", _with_args({"xs": list(range(LIMITS.max_values - 10))})),
    ("a string at the limit", _with_args({"s": "x" * LIMITS.max_string})),
    ("the largest integer", _with_args({"n": 2**63 - 1, "m": -(2**63)})),
    ("an id at the limit", {**SEARCH, "actor": {"id": "a" * LIMITS.max_id}}),
    ("roles at the limit", {**SEARCH, "actor": {"id": "a", "roles": ["r"] * LIMITS.max_items}}),
]


@pytest.mark.parametrize(("what", "req"), WITHIN, ids=[w[0] for w in WITHIN])
def test_a_request_within_the_limits_is_decided(what: str, req: dict[str, Any]) -> None:
    assert _engine().decide(req).outcome in charter.Outcome


def _depth(v: Any) -> int:
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    return 0


_TREES = st.recursive(
    st.one_of(st.integers(-3, 3), st.text(max_size=3), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(tree=_TREES, wrap=st.integers(0, 40))
def test_generated_nesting_is_accepted_exactly_within_the_depth_limit(tree: Any, wrap: int) -> None:
    value = _nested(wrap, tree)
    args = {"x": value}
    within = _depth(args) <= LIMITS.max_depth - 1  # args itself sits one level under the request's roots
    try:
        _engine().decide(_with_args(args))
    except charter.RequestError as exc:
        assert not within, f"refused at depth {_depth(args)}: {exc}"
        return
    assert within, f"accepted at depth {_depth(args)}"


# ---- over the sidecar's real HTTP ------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    yield from http_for(tmp_path_factory)


@pytest.mark.parametrize(
    ("what", "raw", "status"),
    [
        ("nesting 40 deep", json.dumps(_with_args({"x": _nested(40)})), 422),
        (
            "nesting 100,000 deep",
            '{"actor": {"id": "a"}, "action": {"target": "search", "args": {"x": '
            + "[" * 100_000
            + "]" * 100_000
            + "}}}",
            400,
        ),
        ("a long string", json.dumps(_with_args({"s": "x" * (LIMITS.max_string + 1)})), 422),
        (
            "a huge integer",
            '{"actor": {"id": "a"}, "action": {"target": "search", "args": {"n": ' + "9" * 40 + "}}}",
            422,
        ),
        ("too many values", json.dumps(_with_args({"xs": [0] * LIMITS.max_values})), 422),
        ("a body over the size limit", json.dumps(_with_args({"s": "x" * (2 << 20)})), 413),
    ],
)
def test_http_a_request_past_a_limit_is_refused_without_a_5xx(
    http: Http, what: str, raw: str, status: int
) -> None:
    r = http.post("/v1/decide", None, raw=raw)
    assert r.status_code == status, (what, r.status_code, r.text[:300])
    assert "Traceback" not in r.text and '"outcome"' not in r.text
