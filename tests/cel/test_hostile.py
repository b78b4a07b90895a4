"""Hostile input: every expression is rejected at compile time or stopped by the cost bound."""

from __future__ import annotations

import time

import pytest

from charter.cel import CelCompileError, CelError, CelType, ProblemKind, compile_condition
from charter.cel.types import DYN, STRING

ENV = {"x": DYN, "s": STRING, "l": CelType.LIST(DYN)}
BIG = "[" + ", ".join(str(i) for i in range(400)) + "]"
MID = "[" + ", ".join(str(i) for i in range(300)) + "]"

HOSTILE = [
    "(" * 10_000 + "x" + ")" * 10_000,
    "(" * 40 + "x" + ")" * 40 + " == 1",
    "!" * 3000 + "x",
    "-" * 3000 + "1 == x",
    " && ".join(["x"] * 2000),
    "x" + ".a" * 2000 + " == 1",
    "x" + "[0]" * 1500 + " == 1",
    "[" + ", ".join(["1"] * 1000) + "] == x",
    "[" + ", ".join(["1"] * 520) + "] == x",
    "{" + ", ".join(f"{i}: {i}" for i in range(600)) + "} == x",
    "'" + "a" * 5000 + "' == s",
    "'" + "a" * 2000 + "' == s",
    "1 + " * 500 + "1 == x",
    f"{MID}.all(a, {MID}.all(b, a + b >= 0))",
    f"{MID}.map(a, {MID}.map(b, a * b)) == x",
    f"{MID}.exists(a, {MID}.exists(b, a == b + 1000))",
    f"{BIG}.filter(a, {BIG}.exists_one(b, a == b)) == x",
    "[1].all(a, [1].all(b, [1].all(c, a == b)))",
    "s.matches('" + "(a+)+" * 60 + "$')",
    f"{BIG}.all(a, s.matches('(a|aa)*c'))",
    f"{MID}.map(a, s + s + s + s) == x",
    f"{MID}.all(a, l.exists(b, b == a))",
    "x ? " * 100 + "1" + " : 2" * 100 + " == 1",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]] == x",
]


# Compilation happens once per policy load (a maximal 4 KB, 1,200-token condition parses in a few
# milliseconds); evaluation is what must stay under 50 ms.
COMPILE_BUDGET_S = 1.0
EVAL_BUDGET_S = 0.05


@pytest.fixture(scope="module", autouse=True)
def _warm_parser() -> None:
    compile_condition("x == 1", ENV)  # imports the library modules once


@pytest.mark.parametrize("text", HOSTILE, ids=[f"h{i}" for i in range(len(HOSTILE))])
def test_hostile_is_bounded(text: str) -> None:
    act = {"x": 1, "s": "a" * 5000 + "b", "l": list(range(1000))}
    t0 = time.thread_time()
    try:
        c = compile_condition(text, ENV)
    except CelCompileError as ex:
        assert ex.problems and all(isinstance(p.kind, ProblemKind) for p in ex.problems)
        assert time.thread_time() - t0 < COMPILE_BUDGET_S
        return
    assert time.thread_time() - t0 < COMPILE_BUDGET_S
    t1 = time.thread_time()
    v = c.evaluate(act)
    f = c.fn(act)
    elapsed = (time.thread_time() - t1) / 2
    assert type(v) is type(f)
    assert isinstance(v, (bool, CelError))
    assert elapsed < EVAL_BUDGET_S, f"{elapsed * 1000:.1f} ms"


def test_cost_limit_message() -> None:
    small = "[" + ", ".join(str(i) for i in range(150)) + "]"
    c = compile_condition(f"{small}.all(a, {small}.all(b, a + b >= 0))", ENV)
    assert c.evaluate({}) == CelError("cost limit exceeded")


def test_deep_nesting_message() -> None:
    with pytest.raises(CelCompileError) as ei:
        compile_condition("(" * 10_000 + "x" + ")" * 10_000, ENV)
    assert [(p.kind, p.message) for p in ei.value.problems] == [
        (ProblemKind.TOO_COMPLEX, "the condition is too long (20001 characters; the limit is 4096)")
    ]
    with pytest.raises(CelCompileError) as ei:
        compile_condition("(" * 100 + "x" + ")" * 100, ENV)
    assert [(p.kind, p.message) for p in ei.value.problems] == [
        (ProblemKind.TOO_COMPLEX, "the condition is nested too deeply (the limit is 32 levels)")
    ]
    with pytest.raises(CelCompileError) as ei:
        compile_condition("x == " + "(1) + " * 60 + "1", ENV)
    assert [p.kind for p in ei.value.problems] == [ProblemKind.TOO_COMPLEX]
