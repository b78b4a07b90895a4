"""Differential tests: charter.cel must agree with cel-python's interpreter on every expression."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from charter.cel import CelCompileError, reference_evaluate
from charter.cel.api import compile_unchecked

from .gen import activation, expr, same

N_EXPRESSIONS = 10_000


def _agree(text: str, act: dict[str, object]) -> str | None:
    try:
        c = compile_unchecked(text)
    except CelCompileError:
        return None  # rejected at compile time (unsupported or too complex): never a wrong answer
    ref = reference_evaluate(text, act)
    got = c.evaluate(act)
    fast = c.fn(act)
    if not same(got, ref) or not same(fast, ref):
        return f"{text!r} with {act!r}: evaluate={got!r} fn={fast!r} reference={ref!r}"
    return None


def test_differential_seeded() -> None:
    r = random.Random(20240601)
    failures: list[str] = []
    compiled = 0
    for _ in range(N_EXPRESSIONS):
        text = expr(r, r.randint(1, 4))
        act = activation(r)
        msg = _agree(text, act)
        compiled += 1
        if msg:
            failures.append(msg)
    assert compiled == N_EXPRESSIONS
    assert not failures, f"{len(failures)} disagreements, e.g.\n" + "\n".join(failures[:15])


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=4))
def test_differential_hypothesis(seed: int, depth: int) -> None:
    r = random.Random(seed)
    msg = _agree(expr(r, depth), activation(r))
    assert msg is None, msg
