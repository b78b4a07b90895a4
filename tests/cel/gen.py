"""Seeded random generator of CEL expressions and activations for the differential tests."""

from __future__ import annotations

import math
import random
from typing import Any

from charter.cel import CelError, UInt

INTS = ["0", "1", "-1", "2", "7", "-7", "9223372036854775807", "-9223372036854775808", "100"]
UINTS = ["0u", "1u", "2u", "18446744073709551615u"]
DOUBLES = ["0.0", "1.5", "-2.5", "100.0", "1e308", "2.0"]
STRINGS = ["'a'", "'abc'", "''", "'risk'", '"b"']
OTHER = ["true", "false", "null", "b'ab'"]
VARS = ["x", "y", "u", "s", "b", "n", "l", "m", "m.k", "m.zz", "l[0]", "l[9]", "m['k']", "z"]
BIN = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in", "&&", "||"]


def expr(r: random.Random, d: int, bound: tuple[str, ...] = ()) -> str:
    if d <= 0 or r.random() < 0.25:
        pool = r.choice([INTS, UINTS, DOUBLES, STRINGS, OTHER, VARS, VARS])
        if bound and r.random() < 0.5:
            return r.choice(bound)
        return r.choice(pool)
    k = r.random()
    if k < 0.45:
        return f"({expr(r, d - 1, bound)} {r.choice(BIN)} {expr(r, d - 1, bound)})"
    if k < 0.52:
        return f"{r.choice(['!', '-'])}{expr(r, d - 1, bound)}"
    if k < 0.58:
        return f"({expr(r, d - 1, bound)} ? {expr(r, d - 1, bound)} : {expr(r, d - 1, bound)})"
    if k < 0.64:
        return f"[{', '.join(expr(r, d - 2, bound) for _ in range(r.randint(0, 3)))}]"
    if k < 0.67:
        return f"{{{expr(r, 0, bound)}: {expr(r, d - 1, bound)}}}"
    if k < 0.72:
        return r.choice(["has(m.k)", "has(m.zz)", "has(x.k)", "has(z.k)"])
    if k < 0.78:
        f = r.choice(["size", "int", "uint", "double", "string", "bool"])
        return f"{f}({expr(r, d - 1, bound)})"
    if k < 0.84:
        meth = r.choice(["startsWith", "endsWith", "contains", "matches", "size"])
        arg = "" if meth == "size" else r.choice([*STRINGS, "s", "x"])
        return f"{expr(r, d - 1, bound)}.{meth}({arg})"
    macro = r.choice(["all", "exists", "exists_one", "map", "filter"])
    var = r.choice(["v", "w"])
    target = r.choice(["l", "m", "[1, 2, 3]", "[0, 1]", "['a', 'b']", "[1, 'a', 2.0]", "x",
                       expr(r, d - 1, bound)])  # fmt: skip
    body = expr(r, d - 1, (*bound, var))
    return f"{target}.{macro}({var}, {body})"


def activation(r: random.Random) -> dict[str, Any]:
    a: dict[str, Any] = {
        "x": r.choice([0, 1, -3, 2**63 - 1, -(2**63), 42]),
        "y": r.choice([0.0, 1.5, -2.5, math.inf, 100.0]),
        "u": UInt(r.choice([0, 1, 2**64 - 1])),
        "s": r.choice(["", "a", "abc", "risk", "b"]),
        "b": r.choice([True, False]),
        "n": None,
        "l": r.choice([[], [1, 2, 3], [1, "a", 2.5], ["a", "b"], [0], [True, None]]),
        "m": r.choice([{}, {"k": 1}, {"k": "a", "j": 2.0}, {"k": [1, 2]}, {"k": None}]),
    }
    if r.random() < 0.1:
        del a[r.choice(list(a))]
    return a


def same(a: Any, b: Any) -> bool:
    """Same value and same Python type (CelError matches any CelError)."""
    if isinstance(a, CelError) or isinstance(b, CelError):
        return isinstance(a, CelError) and isinstance(b, CelError)
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, str) and "CELEvalError(" in a and "CELEvalError(" in b:
        # cel-python keeps errors inside map/list literals; string() then prints its own wording
        return a.split("CELEvalError(")[0] == b.split("CELEvalError(")[0]
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)
