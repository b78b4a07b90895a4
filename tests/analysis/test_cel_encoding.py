"""The CEL encoding agrees with charter.cel point by point: each expression, on a grid of concrete
argument values, gives the same true / false / error in z3 (simplified to a constant) as the
compiled condition the engine runs."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

z3 = pytest.importorskip("z3")

from charter.analysis.cel import Encoder, Obj, V  # noqa: E402
from charter.cel import CelType, compile_condition  # noqa: E402

S, N, D = CelType.STRING, CelType.INT, CelType.DOUBLE
ENV = {"args": CelType.OBJECT({"s": S, "n": N, "x": D, "m": N})}
VALUES: dict[str, list[Any]] = {
    "s": ["", "abc", "bbc", "b", "a12", "x-y"],
    "n": [-3, 0, 1, 2, 9223372036854775807],
    "x": [-2.5, -3.0, 2.5, 0.0, 1e18],
    "m": [-2, 0, 3],
}
EXPRESSIONS = [
    "args.n + 1 > args.m",
    "args.n * 2 < 0",
    "args.n - args.m == 5",
    "-args.n < 0",
    "args.n / args.m == -2",
    "args.n % args.m == 1",
    "args.x > 2.0 && args.n < 2",
    "args.x > 2.0 || args.n / args.m > 0",
    "args.n / args.m > 0 || args.x > 2.0",
    "!(args.x <= 0.0)",
    "args.x / 2.0 > 1.0",
    "args.x * 2.0 + 1.0 >= args.x",
    "args.x == 1e18",
    "int(args.x) > 1",
    "double(args.n) > 1.5",
    "args.n > 0 ? args.s == 'abc' : args.s == 'b'",
    "args.s == 'abc'",
    "args.s != ''",
    "args.s < 'b'",
    "args.s + 'z' == 'bz'",
    "args.s.startsWith('a')",
    "args.s.endsWith('c')",
    "args.s.contains('b')",
    "args.s.matches('^a[0-9]+$')",
    "args.s.matches('b+c')",
    "args.s.matches('^(ab|bb)c?$')",
    "args.s.matches('[^a-c]')",
    "args.s.matches('\\\\d')",
    "args.s.matches('x.y')",
    "size(args.s) == 3",
    "args.s.size() > 1",
    "args.s in ['abc', 'b']",
    "args.n in [1, 2, 3]",
    "[1, 2, 3].exists(i, i == args.n)",
    "[1, 2, 3].all(i, i < args.n)",
    "[1, 2].exists_one(i, i >= args.n)",
    "[0, 1].all(i, args.m / i > 0)",
    "[0, 1].exists(i, args.m / i > 0)",
    "has(args.s)",
    "math.abs(args.n) == 3",
    "math.sign(args.x) < 0.0",
    "math.greatest(args.n, args.m, 3) == args.n",
    "math.least(args.x, 2.5) == args.x",
    "math.ceil(args.x) == 3.0",
    "math.floor(args.x) == -3.0",
    "math.trunc(args.x) == -2.0",
    "args.s.indexOf('b') == 1",
    "args.s.charAt(args.n) == 'b'",
    "args.s.substring(args.n) == 'bc'",
    "args.s.substring(args.n, args.m) == 'b'",
]


def _truth(term: Any) -> bool:
    """The truth value of a closed formula (simplify, else ask the solver)."""
    value = z3.simplify(term)
    if z3.is_true(value) or z3.is_false(value):
        return bool(z3.is_true(value))
    solver = z3.Solver()
    solver.add(z3.Not(value))
    if solver.check() == z3.unsat:
        return True
    solver = z3.Solver()
    solver.add(value)
    assert solver.check() == z3.unsat, term
    return False


def _encoded(expr: str, node: Any, args: dict[str, Any]) -> Any:
    kinds = {"s": "string", "n": "int", "x": "double", "m": "int"}
    consts = {
        k: V(kind, z3.StringVal(v) if kind == "string" else z3.IntVal(v) if kind == "int" else z3.RealVal(v))
        for k, kind in kinds.items()
        for v in [args[k]]
    }
    root = V("obj", Obj(lambda k: (z3.BoolVal(True), consts[k]) if k in consts else None, is_map=True))
    v = Encoder({"args": root}, expr).encode(node)
    if _truth(v.err):
        return "error"
    return _truth(v.term)


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_the_encoding_agrees_with_the_engine_point_by_point(expr: str) -> None:
    compiled = compile_condition(expr, ENV)
    for values in itertools.product(*VALUES.values()):
        args = dict(zip(VALUES, values, strict=True))
        want = compiled.fn({"args": args})
        want = want if want is True or want is False else "error"
        assert _encoded(expr, compiled.node, args) == want, (expr, args)
