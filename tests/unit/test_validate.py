"""The one request validator: its shape tier agrees with its model tier on every input it accepts,
and both apply the same value rules (finite numbers, 64-bit integers, sizes, nesting)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.engine.validate import LIMITS, RequestError, _by_model, _common_shape, validate_request


class _Str(str):
    """A str subclass (it could redefine equality): never an identifier."""


#: identifiers a hostile in-process caller sends: bytes and other non-str texts, control, format,
#: separator and bidi characters, surrounding spaces (an inner space is valid), bad lengths
HOSTILE_IDS = [
    b"a1",
    bytearray(b"a1"),
    memoryview(b"a1"),
    _Str("a1"),
    "a\x00",
    "a\n",
    "a\r",
    "a\t",
    "a\u202e",
    "\u200b",
    "a\u2028b",
    "\x7f",
    " a",
    "a ",
    " ",
]
_ID = st.one_of(
    st.sampled_from(["a", "payments-agent", "kb.read", "a b", "é—✓", "", "x" * 256, "x" * 257]),
    st.sampled_from(HOSTILE_IDS),
    st.integers(0, 3),
    st.none(),
)
_STRS = st.one_of(
    st.lists(_ID, max_size=3),
    st.tuples(_ID),
    st.just("research"),
    st.none(),
    st.just({}),
)
#: numbers an attacker sends: NaN, the infinities, huge and tiny floats, integers past 64 bits
HOSTILE_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 2**63, -(2**63) - 1, 2**64, 10**30]
    ),
    st.integers(-(2**70), 2**70),
)
#: texts a Python caller can make and JSON cannot carry (a surrogate code point), and valid non-ASCII
HOSTILE_TEXTS = st.sampled_from(["\ud800", "a\udfff", "\udbff\udfff", "é\ud83d", "😀", "é"])
_SCALAR = st.one_of(
    st.integers(-5, 5), HOSTILE_NUMBERS, st.text(max_size=3), HOSTILE_TEXTS, st.booleans(), st.none()
)
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=8,
)


_SOURCE = st.one_of(
    st.sampled_from([{"from": "user"}, {"from": "agent"}, {"from": "model"}, {"from": "user", "call": "c"}]),
    st.fixed_dictionaries({"call": _ID}, optional={"field": st.sampled_from(["id", "a.b", "", "x..y", 3])}),
    _SCALAR,
)
_ENTRY = st.one_of(
    st.fixed_dictionaries(
        {}, optional={"sources": st.one_of(st.lists(_SOURCE, max_size=2), _SCALAR), "labels": _STRS}
    ),
    st.sampled_from([{"labels": ["planned"]}, {"extra": 1}]),
    _SCALAR,
)


def _maybe(d: dict[str, Any], draw: Any, key: str, strat: Any) -> None:
    if draw(st.booleans()):
        d[key] = draw(strat)


@st.composite
def requests(draw: Any) -> Any:
    """Mostly well-formed requests, with a wrong type, a wrong key, a bad length or a hostile value."""
    actor: dict[str, Any] = {"id": draw(_ID)}
    _maybe(actor, draw, "roles", _STRS)
    _maybe(actor, draw, "chain", _STRS)
    _maybe(
        actor,
        draw,
        "attributes",
        st.one_of(st.dictionaries(st.text(max_size=2), _VALUE, max_size=2), _SCALAR),
    )
    _maybe(actor, draw, "human", _ID)
    _maybe(actor, draw, draw(st.sampled_from(["extra", "role"])), _SCALAR)
    action: dict[str, Any] = {"target": draw(_ID)}
    _maybe(action, draw, "kind", st.sampled_from(["call", "delegate", "read", "nope", 3, None]))
    _maybe(action, draw, "args", st.one_of(st.dictionaries(st.text(max_size=2), _VALUE, max_size=2), _SCALAR))
    _maybe(
        action, draw, "labels", st.one_of(st.dictionaries(st.text(max_size=2), _STRS, max_size=2), _SCALAR)
    )
    _maybe(action, draw, "call_id", st.one_of(_ID, _SCALAR))
    # an unknown key beside the usual ones (the shape tier proves its absence by counting keys)
    _maybe(action, draw, draw(st.sampled_from(["extra", "label", "Kind"])), _SCALAR)
    if draw(st.booleans()):  # provenance: per argument (per element for a list), or a wrong shape
        args = action.get("args")
        names = list(args) if isinstance(args, dict) else []
        action["provenance"] = draw(
            st.one_of(
                st.fixed_dictionaries({n: st.one_of(_ENTRY, st.lists(_ENTRY, max_size=3)) for n in names}),
                st.dictionaries(st.text(max_size=2), _ENTRY, max_size=2),
                _SCALAR,
            )
        )
    d: dict[str, Any] = {"actor": actor, "action": action}
    _maybe(
        d,
        draw,
        "context",
        st.one_of(
            st.dictionaries(st.sampled_from(["env", "run", "workflow", "tenant", "ticket"]), _ID, max_size=3),
            st.dictionaries(st.sampled_from(["ticket", "amount", "risk"]), _VALUE, max_size=2),
            _SCALAR,
        ),
    )
    _maybe(
        d,
        draw,
        "cost",
        st.one_of(st.dictionaries(st.sampled_from(["USD", "tokens", ""]), _SCALAR, max_size=2), _SCALAR),
    )
    _maybe(d, draw, "approval", _ID)
    _maybe(d, draw, "idempotency_key", _ID)
    _maybe(d, draw, "trace_id", _ID)
    _maybe(
        d,
        draw,
        "signals",
        st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"source": _ID, "kind": _ID},
                    optional={"severity": _ID, "score": _SCALAR, "note": _ID},
                ),
                max_size=2,
            ),
            _SCALAR,
        ),
    )
    if draw(st.integers(0, 9)) == 0:
        d[draw(st.sampled_from(["extra", "actor", "action"]))] = draw(_SCALAR)
    return d


def _model_tier(d: dict[str, Any]) -> Any:
    try:
        return _by_model(d)
    except RequestError:
        return None


@settings(max_examples=3000, deadline=None)
@given(requests())
def test_shape_tier_accepts_only_what_the_model_tier_accepts_with_the_same_result(d: dict[str, Any]) -> None:
    shape = _common_shape(d)
    model = _model_tier(d)
    if shape is None:
        return  # "not mine": the model tier decides (and words the error)
    assert model is not None, f"the shape tier accepted what the model tier rejects: {d!r}"
    assert shape.to_dict() == model.to_dict()
    assert shape.kind is model.kind
    assert shape.digest() == model.digest()


@settings(max_examples=2000, deadline=None)
@given(requests())
def test_no_accepted_request_holds_a_non_finite_number(d: dict[str, Any]) -> None:
    """Whatever tier takes it, an accepted request has only finite numbers and 64-bit integers."""
    try:
        req = validate_request(d)
    except RequestError as exc:
        assert exc.field, "a rejected request names the field"
        return
    stack: list[Any] = [req.to_dict()]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, float):
            assert math.isfinite(v), d
        elif isinstance(v, int) and not isinstance(v, bool):
            assert -(2**63) <= v < 2**63, d


def test_common_shapes_take_the_shape_tier() -> None:
    base = {"actor": {"id": "a"}, "action": {"target": "t"}}
    assert _common_shape(base) is not None
    full = {
        "actor": {"id": "a", "roles": ["r"], "attributes": {"x": 1}},
        "action": {"kind": "call", "target": "t", "args": {"amount": 3}},
        "context": {"env": "prod"},
    }
    r = _common_shape(full)
    assert r is not None and r.args == {"amount": 3} and r.roles == ("r",) and r.env == "prod"
    nested = {"actor": {"id": "a"}, "action": {"target": "t", "args": {"to": ["a", "b"], "meta": {"k": 1.5}}}}
    r = _common_shape(nested)
    assert r is not None and r.args == nested["action"]["args"]


@pytest.mark.parametrize(
    "action",
    [
        {"target": "t", "kind": "call", "args": {"a": 1}, "extra": 1},
        {"target": "t", "args": {"a": 1}, "extra": 1},
        {"target": "t", "kind": "model", "extra": None},
        {"target": "t", "kind": "call", "args": {}, "labels": {}, "extra": 1},
    ],
)
def test_an_unknown_action_key_beside_the_usual_ones_is_refused_by_both_tiers(action: dict[str, Any]) -> None:
    """The shape tier proves the usual action shape free of other keys by counting them."""
    d = {"actor": {"id": "a"}, "action": action}
    assert _common_shape(d) is None
    with pytest.raises(RequestError, match="extra"):
        validate_request(d)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"amount": math.nan}, "action.args.amount"),
        ({"amount": math.inf}, "action.args.amount"),
        ({"amount": -math.inf}, "action.args.amount"),
        ({"items": [1.0, math.nan]}, "action.args.items[1]"),
        ({"deep": {"er": {"x": math.inf}}}, "action.args.deep.er.x"),
        ({"big": 2**63}, "action.args.big"),
        ({"small": -(2**63) - 1}, "action.args.small"),
        ({"s": "x" * (LIMITS.max_string + 1)}, "action.args.s"),
        ({1: "int key"}, "action.args"),
        ({"when": object()}, "action.args.when"),
    ],
)
def test_hostile_argument_values_are_refused_naming_the_field(args: dict[Any, Any], field: str) -> None:
    with pytest.raises(RequestError) as exc:
        validate_request({"actor": {"id": "a"}, "action": {"target": "t", "args": args}})
    assert exc.value.field is not None and exc.value.field.startswith(field), exc.value
    assert isinstance(exc.value, ValueError)  # callers that catch ValueError keep working


def test_nesting_size_and_count_limits() -> None:
    deep: Any = 1
    for _ in range(LIMITS.max_depth + 1):
        deep = [deep]
    with pytest.raises(RequestError, match="nested deeper"):
        validate_request({"actor": {"id": "a"}, "action": {"target": "t", "args": {"d": deep}}})
    many = {"xs": list(range(LIMITS.max_values + 1))}
    with pytest.raises(RequestError, match="values"):
        validate_request({"actor": {"id": "a"}, "action": {"target": "t", "args": many}})
    ok: Any = 1
    for _ in range(LIMITS.max_depth - 2):
        ok = [ok]
    assert validate_request({"actor": {"id": "a"}, "action": {"target": "t", "args": {"d": ok}}}).args == {
        "d": ok
    }


def test_the_text_of_keys_counts_towards_the_text_limit_in_both_tiers() -> None:
    """Ten keys of 200,000 characters: 2 M characters of text, over LIMITS.max_chars. The shape
    tier once counted only the values' text and accepted what the model tier refuses."""
    args = {f"k{i:02d}" + "x" * 200_000: 1 for i in range(10)}
    req = {"actor": {"id": "a"}, "action": {"target": "t", "args": args}}
    assert _common_shape(req) is None
    with pytest.raises(RequestError, match="characters of text"):
        validate_request(req)
    one = {"actor": {"id": "a"}, "action": {"target": "t", "args": {"k" * (LIMITS.max_string + 1): 1}}}
    assert _common_shape(one) is None
    with pytest.raises(RequestError, match="key longer"):
        validate_request(one)


@pytest.mark.parametrize(
    ("cost", "message"),
    [
        ({"USD": -1}, "negative"),
        ({"USD": math.nan}, "finite"),
        ({"USD": math.inf}, "finite|at most"),
        ({"USD": 1e30}, "at most"),
        ({"USD": True}, "number"),
        ({"USD": "12"}, "number"),
        ({"": 1.0}, "."),
        ({"x" * 300: 1.0}, "."),
    ],
)
def test_hostile_costs_are_refused(cost: dict[str, Any], message: str) -> None:
    req = {"actor": {"id": "a"}, "action": {"target": "t"}, "cost": cost}
    with pytest.raises(RequestError) as exc:
        validate_request(req)
    assert exc.value.field is not None and exc.value.field.startswith("cost")
