"""charter's CEL abstract syntax tree: small node classes carrying character offsets into the text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Node:
    """Base of all AST nodes: character offsets [start, end) into the source text."""

    start: int
    end: int


@dataclass(slots=True)
class Lit(Node):
    """A literal: a CEL value (int, UInt, float, str, bytes, bool or None)."""

    value: Any


@dataclass(slots=True)
class Ident(Node):
    """A name: a variable, a comprehension variable or a type name."""

    name: str


@dataclass(slots=True)
class Select(Node):
    """``operand.field``, or ``operand.?field`` (optional select) when ``optional``."""

    operand: Node
    field: str
    optional: bool = False


@dataclass(slots=True)
class Has(Node):
    """``has(operand.field)``: whether the field or map key is present."""

    operand: Node
    field: str


@dataclass(slots=True)
class Index(Node):
    """``operand[index]``, or ``operand[?index]`` (optional index) when ``optional``."""

    operand: Node
    index: Node
    optional: bool = False


@dataclass(slots=True)
class Call(Node):
    """A global function call ``name(args)``; ``name`` may be qualified (``math.greatest``)."""

    name: str
    args: list[Node]


@dataclass(slots=True)
class Method(Node):
    """A receiver-style call ``target.name(args)``."""

    target: Node
    name: str
    args: list[Node]


@dataclass(slots=True)
class Comprehension(Node):
    """A macro over a list or map.

    ``macro`` is one of all, exists, exists_one, map, filter, transformList, transformMap,
    transformMapEntry, sortBy; ``var2`` is the second variable of the two-variable forms
    (index or key, then value); ``filter`` the predicate of ``map(x, p, t)`` and of the
    four-argument transforms.
    """

    target: Node
    macro: str
    var: str
    body: Node
    var2: str | None = None
    filter: Node | None = None


@dataclass(slots=True)
class Bind(Node):
    """``cel.bind(var, init, body)``: ``body`` with ``var`` bound to the value of ``init``."""

    var: str
    init: Node
    body: Node


@dataclass(slots=True)
class OptMap(Node):
    """``target.optMap(var, body)`` or, when ``flat``, ``target.optFlatMap(var, body)``."""

    target: Node
    var: str
    body: Node
    flat: bool = False


@dataclass(slots=True)
class ListLit(Node):
    """``[a, b, ?c]``: positions in ``optional`` are optional elements (added when present)."""

    items: list[Node]
    optional: frozenset[int] = frozenset()


@dataclass(slots=True)
class MapLit(Node):
    """``{k: v, ?k2: v2}``: entries whose third item is True are optional."""

    entries: list[tuple[Node, Node, bool]]


@dataclass(slots=True)
class Unary(Node):
    """``!x`` or ``-x``."""

    op: str
    operand: Node


@dataclass(slots=True)
class Binary(Node):
    """A binary operator: < <= > >= == != in + - * / %."""

    op: str
    left: Node
    right: Node


@dataclass(slots=True)
class Logic(Node):
    """A chain of ``&&`` (or of ``||``) operands."""

    op: str
    operands: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class Cond(Node):
    """``cond ? then : other``."""

    cond: Node
    then: Node
    other: Node


def dotted(n: Node, scope: frozenset[str] | Mapping[str, Any] = frozenset()) -> list[str] | None:
    """The names of a select chain on an identifier (``a.b.c`` -> [a, b, c]), unless the
    identifier is a local variable (in ``scope``) or a select in it is optional."""
    parts: list[str] = []
    while isinstance(n, Select) and not n.optional:
        parts.append(n.field)
        n = n.operand
    if not isinstance(n, Ident) or n.name in scope:
        return None
    parts.append(n.name)
    parts.reverse()
    return parts


def children(node: Node) -> list[Node]:
    """The direct sub-expressions of a node."""
    t = type(node)
    if t is Select or t is Has:
        return [node.operand]  # type: ignore[attr-defined]
    if t is Index:
        return [node.operand, node.index]  # type: ignore[attr-defined]
    if t is Call:
        return list(node.args)  # type: ignore[attr-defined]
    if t is Method:
        return [node.target, *node.args]  # type: ignore[attr-defined]
    if t is Comprehension:
        assert isinstance(node, Comprehension)
        extra = [node.filter] if node.filter is not None else []
        return [node.target, *extra, node.body]
    if t is Bind:
        return [node.init, node.body]  # type: ignore[attr-defined]
    if t is OptMap:
        return [node.target, node.body]  # type: ignore[attr-defined]
    if t is ListLit:
        return list(node.items)  # type: ignore[attr-defined]
    if t is MapLit:
        return [x for k, v, _ in node.entries for x in (k, v)]  # type: ignore[attr-defined]
    if t is Unary:
        return [node.operand]  # type: ignore[attr-defined]
    if t is Binary:
        return [node.left, node.right]  # type: ignore[attr-defined]
    if t is Logic:
        return list(node.operands)  # type: ignore[attr-defined]
    if t is Cond:
        return [node.cond, node.then, node.other]  # type: ignore[attr-defined]
    return []


def depth(node: Node) -> int:
    """Nesting depth of the AST (an &&/|| chain counts as one level), computed without recursion."""
    best = 0
    stack = [(node, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in children(n))
    return best


def size(node: Node) -> int:
    """Number of nodes in the AST."""
    count = 0
    stack = [node]
    while stack:
        count += 1
        stack.extend(children(stack.pop()))
    return count
