"""Seeded random generator of CEL expressions and activations for the differential tests.

It covers the operators, the standard functions, the extension libraries (strings, math, lists,
sets, encoders, optionals, cel.bind), macros of one and two variables, timestamps and durations,
over values of every type, well-typed or not.
"""

from __future__ import annotations

import math
import random
from typing import Any

INTS = ["0", "1", "-1", "2", "7", "-7", "9223372036854775807", "-9223372036854775808", "100", "3"]
UINTS = ["0u", "1u", "2u", "18446744073709551615u", "7u"]
DOUBLES = ["0.0", "1.5", "-2.5", "100.0", "1e308", "2.0", "-0.0", "0.1", "12345.5", "1e-7"]
STRINGS = ["'a'", "'abc'", "''", "'risk'", '"b"', "'Hello World'", "' pad '", "'a,b,c'", "'%s-%d'",
           "'é'", "'10.0.0.1'", "'2025-01-31T12:00:00Z'", "'1h30m'", "'TRUE'", "'12'", "'-3.5'"]  # fmt: skip
OTHER = ["true", "false", "null", "b'ab'", "b''"]
VARS = ["x", "y", "s", "b", "n", "l", "m", "m.k", "m.zz", "l[0]", "l[9]", "m['k']", "z", "t"]
BIN = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in", "&&", "||"]
GLOBAL_FUNCS = ["size", "int", "uint", "double", "string", "bool", "bytes", "dyn", "math.abs",
                "math.sign", "math.ceil", "math.floor", "math.round", "math.trunc", "math.isNaN",
                "math.isInf", "math.isFinite", "base64.encode", "base64.decode", "strings.quote",
                "math.bitNot"]  # fmt: skip
BINARY_FUNCS = ["math.greatest", "math.least", "math.bitAnd", "math.bitOr", "math.bitXor",
                "math.bitShiftLeft", "math.bitShiftRight"]  # fmt: skip
STRING_METHODS = [("startsWith", 1), ("endsWith", 1), ("contains", 1), ("matches", 1), ("size", 0),
                  ("lowerAscii", 0), ("upperAscii", 0), ("trim", 0), ("charAt", 1), ("indexOf", 1),
                  ("indexOf", 2), ("lastIndexOf", 1), ("lastIndexOf", 2), ("substring", 1),
                  ("substring", 2), ("replace", 2), ("replace", 3), ("split", 1), ("split", 2),
                  ("reverse", 0), ("format", 1)]  # fmt: skip
LIST_METHODS = [("join", 0), ("join", 1), ("size", 0)]
PATTERNS = ["'a'", "'^a'", "'b$'", "'a|b'", "'[0-9]+'", "'^$'", "'(?i)ABC'", "'.'", "'\\\\d'"]
TIMES = ["timestamp('2025-01-31T12:00:00Z')", "timestamp('1970-01-01T00:00:00.5Z')",
         "timestamp(0)", "timestamp(1738324800)"]  # fmt: skip
DURATIONS = ["duration('1h30m')", "duration('-1.5s')", "duration('0s')", "duration('90m')"]
ACCESSORS = ["getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear",
             "getHours", "getMinutes", "getSeconds", "getMilliseconds"]  # fmt: skip


def atom(r: random.Random, bound: tuple[str, ...]) -> str:
    if bound and r.random() < 0.5:
        return r.choice(bound)
    return r.choice(r.choice([INTS, UINTS, DOUBLES, STRINGS, STRINGS, OTHER, VARS, VARS]))


def expr(r: random.Random, d: int, bound: tuple[str, ...] = ()) -> str:
    if d <= 0 or r.random() < 0.2:
        return atom(r, bound)
    k = r.random()
    sub = lambda: expr(r, d - 1, bound)  # noqa: E731
    if k < 0.30:
        return f"({sub()} {r.choice(BIN)} {sub()})"
    if k < 0.34:
        return f"{r.choice(['!', '-'])}{sub()}"
    if k < 0.37:
        return f"({sub()} ? {sub()} : {sub()})"
    if k < 0.42:
        return f"[{', '.join(expr(r, d - 2, bound) for _ in range(r.randint(0, 3)))}]"
    if k < 0.45:
        return f"{{{atom(r, bound)}: {sub()}, {atom(r, bound)}: {sub()}}}"
    if k < 0.48:
        return r.choice(["has(m.k)", "has(m.zz)", "has(x.k)", "has(z.k)", "has({'a': 1}.a)"])
    if k < 0.56:
        return f"{r.choice(GLOBAL_FUNCS)}({sub()})"
    if k < 0.60:
        return f"{r.choice(BINARY_FUNCS)}({sub()}, {sub()})"
    if k < 0.72:
        name, n = r.choice(STRING_METHODS)
        target = r.choice([*STRINGS, "s", sub()])
        if name == "matches":
            args = [r.choice(PATTERNS)]
        elif name == "format":
            # %s only: Google's C++ runtime also formats doubles with %d, where cel-go refuses them
            target = r.choice(["'%s|%s'", "'%s'", "s"])
            args = [f"[{sub()}, {sub()}]"]
        else:
            args = [r.choice([*STRINGS, *INTS[:5], "s", "x"]) for _ in range(n)]
        return f"{target}.{name}({', '.join(args)})"
    if k < 0.76:
        name, n = r.choice(LIST_METHODS)
        target = r.choice(["['a', 'b']", "l", "[]", "['x']", sub()])
        return f"{target}.{name}({', '.join(r.choice(STRINGS) for _ in range(n))})"
    if k < 0.80:
        when = r.choice([*TIMES, *DURATIONS])
        choice = r.random()
        if choice < 0.4:
            return f"{when}.{r.choice(ACCESSORS)}()"
        if choice < 0.7:
            other = r.choice([*TIMES, *DURATIONS])
            return f"string({when} {r.choice(['+', '-'])} {other})"
        return f"({when} {r.choice(['<', '==', '>=', '!='])} {r.choice([*TIMES, *DURATIONS])})"
    if k < 0.83:
        return r.choice([f"{sub()}.orValue(0)", f"m.?k.orValue({sub()})", "m[?'zz'].hasValue()",
                         f"optional.of({sub()}).value()", f"optional.none().or(optional.of({sub()})).value()",
                         "l[?0].orValue(-1)", f"optional.ofNonZeroValue({sub()}).hasValue()"])  # fmt: skip
    if k < 0.86:
        var = r.choice(["a", "c"])
        return f"cel.bind({var}, {sub()}, {expr(r, d - 1, (*bound, var))})"
    if k < 0.90:
        var, var2 = r.sample(["v", "w", "i"], 2)
        target = r.choice(["l", "m", "[1, 2, 3]", "['a', 'b']", "{'a': 1, 'b': 2}", sub()])
        macro = r.choice(["all", "exists", "existsOne", "transformList", "transformMap"])
        return f"{target}.{macro}({var}, {var2}, {expr(r, d - 1, (*bound, var, var2))})"
    macro = r.choice(["all", "exists", "exists_one", "map", "filter"])
    var = r.choice(["v", "w"])
    target = r.choice(["l", "m", "[1, 2, 3]", "[0, 1]", "['a', 'b']", "[1, 'a', 2.0]", "x", sub()])
    body = expr(r, d - 1, (*bound, var))
    return f"{target}.{macro}({var}, {body})"


def activation(r: random.Random) -> dict[str, Any]:
    a: dict[str, Any] = {
        "x": r.choice([0, 1, -3, 2**63 - 1, -(2**63), 42]),
        "y": r.choice([0.0, 1.5, -2.5, math.inf, 100.0, math.nan]),
        "s": r.choice(["", "a", "abc", "risk", "b", "A-1", "  x ", "%d"]),
        "b": r.choice([True, False]),
        "n": None,
        "l": r.choice([[], [1, 2, 3], [1, "a", 2.5], ["a", "b"], [0], [True, None]]),
        "m": r.choice([{}, {"k": 1}, {"k": "a", "j": 2.0}, {"k": [1, 2]}, {"k": None}]),
        "t": r.choice(["2025-01-31T12:00:00Z", "1h", "x"]),
    }
    if r.random() < 0.1:
        del a[r.choice(list(a))]
    return a
