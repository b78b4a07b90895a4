"""The fast path (generated Python) against the evaluator: whole results equal on every generated
condition and activation, including wrong types, missing keys, huge numbers, NaN, long texts and
containers past the sizes the fast path handles, and a decision budget nearly spent."""

from __future__ import annotations

import math
import random
from typing import Any

from charter.cel import CelCompileError, CelType, compile_condition
from charter.cel.limits import Budget

ENV = {
    "a": CelType.OBJECT({"n": CelType.INT, "d": CelType.DOUBLE, "s": CelType.STRING, "b": CelType.BOOL,
                         "l": CelType.LIST(CelType.STRING), "m": CelType.MAP(CelType.STRING, CelType.DYN)},
                        open=True),
    "x": CelType.DYN,
}  # fmt: skip
LEAVES = [
    "a.n",
    "a.d",
    "a.s",
    "a.b",
    "x",
    "a.m.k",
    "a['s']",
    "a.l[0]",
    "a.l[1]",
    "a.m['k']",
    "-a.d",
    "-a.n",
    "{'risk': 'r', 'ops': 'o', 'ACME': 'a'}[a.s]",
    "{'risk': 1, 'ops': 2.5}[x]",
    "size(a.s) + size(a.l)",
    "size(a.l) + 9223372036854775807",
    "a.s + 'k'",
    "path.clean(a.s)",
    "path.base(x)",
    "-(-9223372036854775807 - 1)",
]
CONTAINERS = ["a.l", "a.m", '["risk", "ops"]', "[1, 2, 3]", "x"]
LITERALS = ["1", "0", "-3", "2.5", "0.0", "'risk'", "''", "'ACME'", "true", "false", "9223372036854775807"]


def _cond(r: random.Random, d: int) -> str:
    k = r.random()
    if d <= 0 or k < 0.35:
        left = r.choice(LEAVES)
        c = r.random()
        if c < 0.45:
            return f"{left} {r.choice(['==', '!=', '<', '<=', '>', '>='])} {r.choice(LITERALS + LEAVES)}"
        if c < 0.6:
            return f"{left} in {r.choice(CONTAINERS)}"
        if c < 0.7:
            return f"has(a.{r.choice(['n', 'zz', 'm'])})"
        if c < 0.8:
            return (
                f"size({r.choice(['a.s', 'a.l', 'a.m', 'x'])}) {r.choice(['>', '=='])} {r.choice(['0', '2'])}"
            )
        meth = r.choice(["startsWith", "endsWith", "contains", "matches"])
        arg = "'^[A-Z]+$'" if meth == "matches" else r.choice(["'AC'", "'k'", "a.s", "''"])
        return f"{r.choice(['a.s', 'x', 'a.l[0]', 'path.clean(x)', 'path.dir(a.s)'])}.{meth}({arg})"
    if k < 0.6:
        return f"({_cond(r, d - 1)} {r.choice(['&&', '||'])} {_cond(r, d - 1)})"
    if k < 0.75:
        return f"!({_cond(r, d - 1)})"
    return f"({_cond(r, d - 1)} ? {_cond(r, d - 1)} : {_cond(r, d - 1)})"


def _value(r: random.Random) -> Any:
    return r.choice([0, 1, -3, 2**63 - 1, 2**70, 2.5, math.nan, math.inf, "risk", "ACME", "", "x" * 5000,
                     "src/../.git/config", "../k", "/a//b/", "x/" * 2500,
                     True, False, None, ["risk"], ["ops", "risk"], ["a"] * 5000, {"k": 1}, {}])  # fmt: skip


def _activation(r: random.Random) -> dict[str, Any]:
    a = {"n": _value(r), "d": _value(r), "s": _value(r), "b": _value(r), "l": _value(r), "m": _value(r)}
    for key in list(a):
        if r.random() < 0.1:
            del a[key]
    act: dict[str, Any] = {"a": a, "x": _value(r)}
    if r.random() < 0.05:
        del act["a"]
    return act


class _Activation(dict[str, Any]):
    cel_budget: Budget


def test_fast_path_gives_what_the_evaluator_gives() -> None:
    r = random.Random(424242)
    fast = 0
    for _ in range(6000):
        text = _cond(r, r.randint(0, 3))
        try:
            c = compile_condition(text, ENV)
        except CelCompileError:
            continue
        fast += c.fn is not c.evaluate
        for _ in range(3):
            act = _activation(r)
            assert repr(c.fn(act)) == repr(c.evaluate(act)), (text, act)
            # with a decision budget already nearly spent, both must still agree
            shared = _Activation(act)
            shared.cel_budget = Budget(100)
            shared.cel_budget.cost = 99
            fn_result = repr(c.fn(shared))
            shared.cel_budget.cost = 99
            assert fn_result == repr(c.evaluate(shared)), (text, act)
    assert fast > 2000  # most generated conditions that compile take the fast path


def _value_expr(r: random.Random, d: int) -> str:
    """An expression whose value need not be a boolean (a budget amount, a grant's use count)."""
    if d <= 0 or r.random() < 0.5:
        return r.choice(LEAVES + LITERALS)
    return f"({_cond(r, d - 1)} ? {_value_expr(r, d - 1)} : {_value_expr(r, d - 1)})"


def test_fast_values_give_what_the_evaluator_gives() -> None:
    """Whole values (not only booleans): a value read is returned as the evaluator returns it."""
    r = random.Random(1818)
    fast = 0
    for _ in range(3000):
        text = _value_expr(r, r.randint(0, 2))
        try:
            c = compile_condition(text, ENV, expect_bool=False)
        except CelCompileError:
            continue
        fast += c.fn is not c.evaluate
        for _ in range(3):
            act = _activation(r)
            assert repr(c.fn(act)) == repr(c.evaluate(act)), (text, act)
    assert fast > 1000


def test_orderings_of_two_values_read_take_the_fast_path() -> None:
    for text in (
        "a.d <= a.m.k",
        "a.s < x",
        "-a.d == a.d",
        "{'a': 'b'}[a.s] in a.l",
        "a.d",
        "path.clean(a.s).startsWith('src/')",
    ):
        c = compile_condition(text, ENV, expect_bool=False)
        assert c.fn is not c.evaluate, text
