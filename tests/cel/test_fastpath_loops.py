"""The fast path's comprehensions, provenance calls, text ``+``, list equality and ``granted()``
against the evaluator: whole results equal, and the decision budget left equal, on generated
conditions and activations (lists past the fast path's length, values of every type, missing
keys, provenance data that knows or does not know a value, a grant table answering or failing,
budgets untouched, nearly spent and spent)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from charter.cel import CelCompileError, CelType, compile_condition
from charter.cel.api import define
from charter.cel.grants import GRANTS
from charter.cel.inline import Definitions
from charter.cel.limits import Budget, Limits
from charter.cel.provenance import PROVENANCE
from charter.cel.values import EvalError

ENV = {
    "args": CelType.MAP(CelType.STRING, CelType.DYN),
    "grant": CelType.MAP(CelType.STRING, CelType.DYN),
    "x": CelType.DYN,
}
LISTS = ["args.to", "grant.to", "x", "sources(args.to)", "labels(args.to)", "args.m", '["a", "b"]']
CONTAINERS = ["grant.to", "args.to", '["a", "user"]', "x"]
LABEL_LISTS = ['["user"]', "[]", '["a", "user"]']
KINDS = ['"send"', '"pay"', '"boom"']
TEXTS = ["args.s", "x", "v", "w", "'a'", "'b@lumen.example'", "v.tool", "v.field"]


def _leaf(r: random.Random, vars_: list[str]) -> str:
    v = r.choice(vars_) if vars_ and r.random() < 0.6 else r.choice(TEXTS)
    c = r.random()
    if c < 0.2:
        return f"{v} in {r.choice(CONTAINERS)}"
    if c < 0.35:
        return f"{v} == {r.choice(TEXTS)}"
    if c < 0.5:
        return f"labels({v}) == {r.choice(LABEL_LISTS)}"
    if c < 0.6:
        return f"{v} + '.' + {r.choice(TEXTS)} in grant.to"
    if c < 0.7:
        return f"sources({v}).size() > 0"
    if c < 0.78:
        return f"{v}.kind == 'call' && {v}.inputs.all(l, l in ['user', 'trusted'])"
    if c < 0.8:  # a named condition with two comprehensions: three deep inside a loop
        return f"fo({v}, {r.choice(CONTAINERS)})"
    if c < 0.85:
        return f"granted({r.choice(KINDS)})"
    if c < 0.92:
        return f"has(args.{r.choice(['to', 'zz'])})"
    return f"{v}.endsWith('@lumen.example')"


def _cond(r: random.Random, d: int, vars_: list[str]) -> str:
    k = r.random()
    if d <= 0 or k < 0.3:
        return _leaf(r, vars_)
    if k < 0.6:
        var = r.choice(["v", "w"])
        macro = r.choice(["all", "exists"])
        return f"{r.choice(LISTS)}.{macro}({var}, {_cond(r, d - 1, [*vars_, var])})"
    if k < 0.8:
        return f"({_cond(r, d - 1, vars_)} {r.choice(['&&', '||'])} {_cond(r, d - 1, vars_)})"
    if k < 0.9:
        return f"!({_cond(r, d - 1, vars_)})"
    return f"({_cond(r, d - 1, vars_)} ? {_cond(r, d - 1, vars_)} : {_cond(r, d - 1, vars_)})"


_TEXTS = ["a", "b", "user", "ruth@x.example", "b@lumen.example", "", "x" * 5000]


def _value(r: random.Random) -> Any:
    c = r.random()
    if c < 0.35:
        return r.choice(_TEXTS)
    if c < 0.7:
        n = r.choice([0, 1, 2, 3, 33, 70])
        return [
            r.choice(_TEXTS) if r.random() < 0.9 else r.choice([1, None, {"kind": "call"}]) for _ in range(n)
        ]
    return r.choice([1, 2**70, 2.5, True, None, {"kind": "call", "inputs": ["user"]}, {}, ("a",)])


class _Provenance:
    """Knows the values it was given (by identity, as the engine's table does)."""

    def __init__(self, r: random.Random, values: list[Any]) -> None:
        self.known: dict[int, tuple[list[str], list[dict[str, Any]] | None]] = {}
        for v in values:
            if r.random() < 0.6:
                labels = sorted(r.sample(["user", "trusted", "a", "untrusted"], r.randint(0, 2)))
                srcs = [
                    {"kind": r.choice(["call", "user"]), "call": "c1", "tool": r.choice(["a", "b", "mail"]),
                     "field": r.choice(["", "to", "b"]), "labels": labels,
                     "inputs": r.sample(["user", "trusted", "planned", "untrusted"], r.randint(0, 2))}
                    for _ in range(r.randint(0, 3))
                ]  # fmt: skip
                self.known[id(v)] = (labels, srcs if srcs or r.random() < 0.5 else None)

    def labels(self, value: Any) -> list[str]:
        got = self.known.get(id(value))
        return list(got[0]) if got else []

    def sources(self, value: Any) -> list[dict[str, Any]] | None:
        got = self.known.get(id(value))
        return got[1] if got else None


class _Grants:
    """Answers each kind once (as the engine's table keeps its answers); "boom" fails."""

    def __init__(self, r: random.Random) -> None:
        self.answers = {"send": r.random() < 0.5, "pay": r.random() < 0.5}
        self.asked: list[str] = []

    def granted(self, kind: str, activation: Mapping[str, Any]) -> bool:
        if kind == "boom":
            raise EvalError("no such grant table")
        self.asked.append(kind)
        return self.answers.get(kind, False)


class _Act(dict[str, Any]):
    cel_budget: Budget


def _activation(r: random.Random) -> dict[str, Any]:
    args: dict[str, Any] = {"to": _value(r), "s": _value(r), "m": _value(r)}
    for key in list(args):
        if r.random() < 0.1:
            del args[key]
    elements = list(args.get("to", [])) if isinstance(args.get("to"), list) else []
    act: dict[str, Any] = {"args": args, "grant": {"to": _value(r)}, "x": _value(r)}
    act[PROVENANCE] = _Provenance(r, [*args.values(), *elements])
    if r.random() < 0.8:
        act[GRANTS] = _Grants(r)
    return act


def _both(c: Any, act: dict[str, Any], spent: int | None, total: int) -> tuple[str, str]:
    """Each path's result and the budget it leaves, on equal copies of the activation."""
    out = []
    for fn in (c.fn, c.evaluate):
        a = _Act(act)
        if spent is not None:
            a.cel_budget = Budget(total)
            a.cel_budget.cost = spent
        got = repr(fn(a))
        out.append(f"{got} budget={a.cel_budget.cost if spent is not None else '-'}")
    return out[0], out[1]


#: the example assistant's from_origin, as the generated conditions call it
_FO = define(
    "fo",
    (("v", CelType.DYN), ("origins", CelType.LIST(CelType.STRING))),
    'sources(v).size() > 0 && sources(v).all(s, s.kind == "call" && '
    '(s.inputs.all(l, l in ["user", "trusted"]) || "a" in s.inputs && s.inputs.all(l, l != "untrusted")) && '
    '(s.tool in origins || s.tool + "." + s.field in origins))',
    ENV,
    Definitions(),
)
DEFS = Definitions({}, {"fo": _FO})


def test_fast_loops_give_what_the_evaluator_gives() -> None:
    r = random.Random(181818)
    fast = 0
    for _ in range(3000):
        text = _cond(r, r.randint(0, 3), [])
        try:
            c = compile_condition(text, ENV, defs=DEFS)
        except CelCompileError:
            continue
        fast += c.fn is not c.evaluate
        for _ in range(3):
            act = _activation(r)
            for spent, total in ((None, 0), (0, 100_000), (99_990, 100_000), (100, 100), (0, 60)):
                f, e = _both(c, act, spent, total)
                assert f == e, (text, spent, total)
    assert fast > 1000  # a third or more of the generated conditions take the fast path


def test_the_fast_path_covers_the_example_grants() -> None:
    for text in (
        'args.to.all(r, r in grant.to || sources(r).size() > 0 && sources(r).all(s, s.kind == "call" '
        '&& "user" in s.inputs && (s.tool in grant.to || s.tool + "." + s.field in grant.to)))',
        'labels(args.s) == ["user"]',
        'granted("send") && args.to.exists(r, !r.endsWith("@lumen.example"))',
    ):
        c = compile_condition(text, ENV)
        assert c.fn is not c.evaluate, text


def test_deeply_nested_comprehensions_stop_at_the_budget_as_the_evaluator() -> None:
    """Comprehensions three deep (a named condition inlined under two macros; a policy's limit is
    two, so the limits are raised here): the fast path counts their cost as it goes and falls back
    past one evaluation's budget."""
    inner = define("inner", (("v", CelType.DYN), ("w", CelType.DYN)),
                   "x.all(u, u == v || u == w || u == 'a')", ENV, Definitions())  # fmt: skip
    deep = Limits(max_comprehension_nesting=3)
    c = compile_condition(
        "x.all(v, x.all(w, inner(v, w)))", ENV, limits=deep, defs=Definitions({}, {"inner": inner})
    )
    assert c.fn is not c.evaluate
    for n in (0, 1, 5, 20, 32):
        for fill in ("a", "b"):
            act = {"x": [fill] * n}
            for spent, total in ((None, 0), (0, 100_000), (99_990, 100_000), (0, 30_000)):
                f, e = _both(c, act, spent, total)
                assert f == e, (n, fill, spent, total)
    f, e = _both(c, {"x": ["a"] * 32}, 0, 200_000)
    assert f == e and "cost limit" in f  # 32**3 inner steps: past one evaluation's 50,000


def test_a_comprehension_over_a_long_list_falls_back_and_charges_as_the_evaluator() -> None:
    c = compile_condition("x.all(v, v == 'a')", ENV)
    for n in (32, 33, 2000):
        act = {"x": ["a"] * n}
        f, e = _both(c, act, 0, 100_000)
        assert f == e
    f, e = _both(c, {"x": ["a"] * 10}, 99_995, 100_000)
    assert f == e and "cost limit" in f
