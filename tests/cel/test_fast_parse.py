"""The tree-less CEL parse builds exactly the nodes (spans, literal values) the parse tree gives."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from celpy.celparser import CELParseError, CELParser

from charter.cel.grammar import lark_parser, parse_fast
from charter.cel.limits import Limits
from charter.cel.syntax import Node, _Builder, _lark_depth
from charter.syntax.lalr import NoFastPath

from .gen import expr

N_EXPRESSIONS = 3000
HANDPICKED = [
    "true", "x && true", "a ? b : c ? d : e", "(a || b) || c", "a || (b || c)", "a || b || c && d",
    "!!x", "- -1", "x in [1, 2, 3]", "{1: 2, 3: 4}", "m[1][2]", "null", "1u", "0x1F", "1e3", "b'ab'",
    "'''a\nb'''", "r'a'", "a // comment\n && b", "f()", "a.f()", "size(x) < 3", "x.all(v, v > 1)",
    "9223372036854775808", "1.5e999", "in", '"risk" in actor.roles && size(args.memo) < 12',
]  # fmt: skip
DECLINED = ["1 +", "(", "'abc", ".a", ".f(1)", "T{a: 1}", "x.reduce(a, b)", "x.all(1, 2)", "x.map(v)",
            "'" + "a" * 2000 + "'"]  # fmt: skip


def dump(n: Any) -> Any:
    """A node as nested tuples, with every field's type (the node classes compare by identity)."""
    if isinstance(n, Node):
        return (type(n).__name__, *[dump(getattr(n, f.name)) for f in dataclasses.fields(n)])
    if isinstance(n, list | tuple):
        return tuple(dump(x) for x in n)
    return (type(n).__name__, repr(n))


def tree_path(text: str, limits: Limits) -> tuple[Any, int] | None:
    """The parse-tree path's nodes and tree depth; None when it reports a problem."""
    lark_parser()
    try:
        tree = CELParser().parse(text)
    except CELParseError:
        return None
    builder = _Builder(text, limits)
    node = builder.build(tree)
    return None if builder.problems else (dump(node), _lark_depth(tree, 10_000))


def check(text: str) -> str | None:
    limits = Limits()
    expected = tree_path(text, limits)
    try:
        node, depth = parse_fast(text, limits)
    except NoFastPath:
        return None if expected is None else f"{text!r}: declined, but the tree path builds it"
    if expected != (dump(node), depth):
        return f"{text!r}: {(dump(node), depth)} != {expected}"
    return None


def test_generated_and_handpicked() -> None:
    r = random.Random(11)
    texts = HANDPICKED + [expr(r, r.randint(0, 6)) for _ in range(N_EXPRESSIONS)]
    failures = [f for f in map(check, texts) if f]
    assert not failures, failures[:5]


def test_declines_what_the_tree_path_reports() -> None:
    for text in DECLINED:
        assert tree_path(text, Limits()) is None, text
        try:
            parse_fast(text, Limits())
        except NoFastPath:
            continue
        raise AssertionError(f"{text!r} was not declined")
