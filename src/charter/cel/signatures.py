"""Function declarations: each CEL function's overloads (for the checker) beside its implementation.

One :class:`Function` per name and call style holds the implementation the evaluator calls and
the typed overloads the checker resolves, so the two cannot drift apart. Overloads are written as
text, ``"(list(A), A) -> bool"``; single capital letters are type parameters; for a receiver-style
function the first parameter is the receiver.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from charter.cel.types import CelType

_PRIMITIVES = {
    "int": CelType.INT,
    "uint": CelType.UINT,
    "double": CelType.DOUBLE,
    "string": CelType.STRING,
    "bytes": CelType.BYTES,
    "bool": CelType.BOOL,
    "null_type": CelType.NULL,
    "timestamp": CelType.TIMESTAMP,
    "duration": CelType.DURATION,
    "dyn": CelType.DYN,
    "type": CelType.TYPE,
    "net.IP": CelType.OPAQUE("net.IP"),
    "net.CIDR": CelType.OPAQUE("net.CIDR"),
    "kubernetes.URL": CelType.OPAQUE("kubernetes.URL"),
}
_TOKEN = re.compile(r"\s*([A-Za-z_][\w.]*|[(),]|->)")


@dataclass(frozen=True)
class Overload:
    """One typed signature: parameter types (the receiver first for methods) and the result."""

    params: tuple[CelType, ...]
    result: CelType


@dataclass(frozen=True)
class Function:
    """A CEL function: implementation, overloads, and the work one call costs."""

    name: str
    impl: Callable[..., Any]
    overloads: tuple[Overload, ...]
    member: bool = False
    #: Extra cost of a call given its argument values (beyond the one unit every call costs).
    cost: Callable[..., int] | None = None
    #: Takes any number of arguments of the first overload's parameter type (math.greatest).
    variadic: bool = False
    #: Shown in docs/language.md and in "did you mean".
    doc: str = ""
    examples: tuple[str, ...] = field(default=())


def parse_type(text: str) -> CelType:
    """A type written as in an overload: ``list(string)``, ``map(K, V)``, ``optional(A)``, ``A``."""
    toks = [m.group(1) for m in _TOKEN.finditer(text)]
    t, rest = _type(toks)
    assert not rest, text
    return t


def _type(toks: list[str]) -> tuple[CelType, list[str]]:
    head, rest = toks[0], toks[1:]
    if head in ("list", "optional") and rest[:1] == ["("]:
        inner, rest = _type(rest[1:])
        assert rest[0] == ")"
        return (CelType.LIST(inner) if head == "list" else CelType.OPTIONAL(inner)), rest[1:]
    if head == "map" and rest[:1] == ["("]:
        k, rest = _type(rest[1:])
        assert rest[0] == ","
        v, rest = _type(rest[1:])
        assert rest[0] == ")"
        return CelType.MAP(k, v), rest[1:]
    if head == "type" and rest[:1] == ["("]:
        inner, rest = _type(rest[1:])
        assert rest[0] == ")"
        return CelType("type", elem=inner), rest[1:]
    if len(head) == 1 and head.isupper():
        return CelType.PARAM(head), rest
    return _PRIMITIVES[head], rest


def parse_overload(text: str) -> Overload:
    """``"(string, int) -> bool"`` as an Overload."""
    params_text, result_text = text.split("->")
    inner = params_text.strip()
    assert inner[0] == "(" and inner[-1] == ")", text
    body = inner[1:-1].strip()
    params: list[CelType] = []
    depth = 0
    start = 0
    for i, ch in enumerate(body):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            params.append(parse_type(body[start:i]))
            start = i + 1
    if body:
        params.append(parse_type(body[start:]))
    return Overload(tuple(params), parse_type(result_text))


def fn(
    name: str,
    impl: Callable[..., Any],
    *sigs: str,
    member: bool = False,
    cost: Callable[..., int] | None = None,
    variadic: bool = False,
    doc: str = "",
    examples: Sequence[str] = (),
) -> Function:
    """A Function from overloads written as text."""
    return Function(name, impl, tuple(parse_overload(s) for s in sigs), member, cost, variadic, doc,
                    tuple(examples))  # fmt: skip
