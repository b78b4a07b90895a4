"""The hand-written request validator agrees with the pydantic model on every input it accepts."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from charter.engine.req import _fast, from_model
from charter.engine.request import Request

_ID = st.one_of(
    st.sampled_from(["a", "payments-agent", "kb.read", "", "x" * 256, "x" * 257]),
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
_SCALAR = st.one_of(
    st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=3), st.booleans(), st.none()
)


def _maybe(d: dict[str, Any], draw: Any, key: str, strat: Any) -> None:
    if draw(st.booleans()):
        d[key] = draw(strat)


@st.composite
def requests(draw: Any) -> Any:
    """Mostly well-formed requests, with a wrong type, a wrong key or a bad length mixed in."""
    actor: dict[str, Any] = {"id": draw(_ID)}
    _maybe(actor, draw, "roles", _STRS)
    _maybe(actor, draw, "chain", _STRS)
    _maybe(
        actor,
        draw,
        "attributes",
        st.one_of(st.dictionaries(st.text(max_size=2), _SCALAR, max_size=2), _SCALAR),
    )
    _maybe(actor, draw, "human", _ID)
    action: dict[str, Any] = {"target": draw(_ID)}
    _maybe(action, draw, "kind", st.sampled_from(["call", "delegate", "read", "nope", 3, None]))
    _maybe(
        action, draw, "args", st.one_of(st.dictionaries(st.text(max_size=2), _SCALAR, max_size=2), _SCALAR)
    )
    _maybe(
        action, draw, "labels", st.one_of(st.dictionaries(st.text(max_size=2), _STRS, max_size=2), _SCALAR)
    )
    d: dict[str, Any] = {"actor": actor, "action": action}
    _maybe(
        d,
        draw,
        "context",
        st.one_of(
            st.dictionaries(st.sampled_from(["env", "run", "workflow", "tenant", "ticket"]), _ID, max_size=3),
            _SCALAR,
        ),
    )
    _maybe(
        d,
        draw,
        "cost",
        st.one_of(st.dictionaries(st.sampled_from(["USD", "tokens"]), _SCALAR, max_size=2), _SCALAR),
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


@settings(max_examples=3000, deadline=None)
@given(requests())
def test_fast_path_accepts_only_what_pydantic_accepts_with_the_same_result(d: dict[str, Any]) -> None:
    fast = _fast(d)
    if fast is None:
        return  # the full validator decides (and words the error)
    try:
        model = Request.model_validate(d)
    except ValidationError as exc:  # pragma: no cover - the failure message shows the input
        raise AssertionError(f"fast path accepted what pydantic rejects: {d!r}\n{exc}") from None
    assert fast.to_dict() == from_model(model).to_dict()
    assert fast.kind is from_model(model).kind


def test_common_shapes_take_the_fast_path() -> None:
    base = {"actor": {"id": "a"}, "action": {"target": "t"}}
    assert _fast(base) is not None
    full = {
        "actor": {"id": "a", "roles": ["r"], "attributes": {"x": 1}},
        "action": {"kind": "call", "target": "t", "args": {"amount": 3}},
        "context": {"env": "prod"},
    }
    r = _fast(full)
    assert r is not None and r.args == {"amount": 3} and r.roles == ("r",) and r.env == "prod"
    only_args = {"actor": {"id": "a"}, "action": {"target": "t", "args": {"k": 1}}}
    r = _fast(only_args)
    assert r is not None and r.args == {"k": 1}
