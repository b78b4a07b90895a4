"""Named constants and named conditions: declared once, checked at each call site, inlined before compiling.

A policy's constants and named conditions are not run-time variables or functions: a constant is
substituted by its value (a list constant becomes one literal, so ``x in payees`` is one frozen-set
lookup on the fast path), and a call of a named condition is replaced by the condition's body with
the call's arguments in place of its parameters. The checker still sees the call (its arguments are
checked against the declared parameters, and the body was checked once against them), so
diagnostics point at what the author wrote; only the compiled closures see the inlined tree.

Inlining is hygienic: the body's own macro variables are renamed (``l`` becomes ``l@vouched``, a name
no condition can write), so an argument can never be captured by them; a call site whose macro
variable has the name of a request root the body reads is refused by the checker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from charter.cel.syntax import Bind, Call, Comprehension, Ident, Lit, MapLit, Node, OptMap, children, size
from charter.cel.types import CelType

#: Most nodes an inlined condition may have (conditions calling conditions multiply their bodies).
MAX_INLINED_NODES = 20_000


@dataclass(frozen=True)
class Constant:
    """A named constant: its declared (or literal) type and its plain CEL value."""

    type: CelType
    #: str, int, float, bool, or a list of those (a ``set of T`` is a list without duplicates)
    value: Any


@dataclass(frozen=True)
class Definition:
    """A named condition ready to inline: typed parameters and its checked, prepared body."""

    name: str
    params: tuple[tuple[str, CelType], ...]
    #: the body with constants substituted, nested conditions inlined and macro variables renamed
    body: Node
    #: the request roots the body reads (``run``, ``context`` ...): no call site may shadow them
    roots: frozenset[str]
    #: the dotted paths the body reads (the engine builds what conditions read)
    references: frozenset[str]

    @property
    def signature(self) -> str:
        """``name(p: type, ...)`` for messages."""
        return f"{self.name}(" + ", ".join(f"{p}: {t}" for p, t in self.params) + ")"


@dataclass(frozen=True)
class Definitions:
    """The constants and named conditions every condition of one policy may use."""

    constants: Mapping[str, Constant] = field(default_factory=dict)
    conditions: Mapping[str, Definition] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.constants) or bool(self.conditions)

    def types(self) -> dict[str, CelType]:
        """The constants as checker declarations."""
        return {name: c.type for name, c in self.constants.items()}

    def strip(self, references: frozenset[str]) -> frozenset[str]:
        """References without the constants (they are compiled in, not read from the request)."""
        if not self.constants:
            return references
        return frozenset(r for r in references if r.split(".", 1)[0] not in self.constants)


class InlineTooLarge(Exception):
    """The inlined condition would exceed MAX_INLINED_NODES."""


def _rebuild(n: Node, visit: Callable[[Node, bool], Node]) -> Node:
    """``n`` with every child replaced by ``visit(child, inner)`` (inner: the child is in a macro's scope)."""
    if isinstance(n, Lit):  # a literal's value may be a list (an inlined constant): no children
        return replace(n)
    changes: dict[str, Any] = {}
    scoped = {"body", "filter"} if isinstance(n, (Comprehension, Bind, OptMap)) else set()
    for f in fields(n):
        v = getattr(n, f.name)
        if isinstance(v, Node):
            changes[f.name] = visit(v, f.name in scoped)
        elif isinstance(v, list):
            if isinstance(n, MapLit):
                changes[f.name] = [(visit(k, False), visit(x, False), o) for k, x, o in v]
            else:
                changes[f.name] = [visit(x, False) for x in v]
    return replace(n, **changes)


def _bound(n: Node) -> tuple[str, ...]:
    if isinstance(n, Comprehension):
        return (n.var, n.var2) if n.var2 else (n.var,)
    if isinstance(n, (Bind, OptMap)):
        return (n.var,)
    return ()


def inline(node: Node, defs: Definitions) -> Node:
    """``node`` with constants substituted and calls of named conditions replaced by their bodies."""
    out = _inline(node, defs, frozenset())
    if size(out) > MAX_INLINED_NODES:
        raise InlineTooLarge
    return out


def too_deep(node: Node, limit: int) -> Comprehension | None:
    """The first macro of ``node`` nested more than ``limit`` deep (counted as the checker counts:
    a macro inside another's body or filter is one deeper; inside its target it is not), or None.

    The checker counts a condition as written; inlining a named condition puts its body's macros
    (and an argument's, where a parameter sits inside the body's macros) under the call site's,
    so the compiler counts the inlined tree again: a named condition costs what the same text
    written out costs, its nesting included."""
    stack: list[tuple[Node, int]] = [(node, 0)]
    while stack:
        n, depth = stack.pop()
        if isinstance(n, Comprehension):
            if depth + 1 > limit:
                return n
            stack.append((n.target, depth))
            stack.append((n.body, depth + 1))
            if n.filter is not None:
                stack.append((n.filter, depth + 1))
            continue
        stack.extend((c, depth) for c in children(n))
    return None


def _inline(n: Node, defs: Definitions, scope: frozenset[str]) -> Node:
    if isinstance(n, Ident):
        if n.name not in scope:
            const = defs.constants.get(n.name)
            if const is not None:
                value = list(const.value) if isinstance(const.value, (list, tuple)) else const.value
                return Lit(n.start, n.end, value)
        return n
    if isinstance(n, Call) and n.name in defs.conditions:
        d = defs.conditions[n.name]
        args = {p: _inline(a, defs, scope) for (p, _), a in zip(d.params, n.args, strict=True)}
        return _substitute(d.body, args, n.start, n.end)
    inner = scope | frozenset(_bound(n))
    return _rebuild(n, lambda c, in_scope: _inline(c, defs, inner if in_scope else scope))


def _substitute(body: Node, args: Mapping[str, Node], start: int, end: int) -> Node:
    """The prepared ``body`` with each parameter replaced by its argument, placed at the call site."""

    def visit(n: Node, _inner: bool = False) -> Node:
        if isinstance(n, Ident) and n.name in args:
            return args[n.name]
        out = _rebuild(n, visit)
        out.start, out.end = start, end
        return out

    return visit(body)


def prepare(name: str, body: Node, params: frozenset[str]) -> Node:
    """A checked, inlined body with its macro variables renamed ``var@name`` (hygiene).

    Identifiers that name a parameter (and are not shadowed by a macro variable) stay, to be
    replaced at each call site; every macro variable and its uses are renamed.
    """

    def visit(n: Node, renames: Mapping[str, str]) -> Node:
        if isinstance(n, Ident):
            new = renames.get(n.name)
            return replace(n, name=new) if new is not None else n
        bound = _bound(n)
        if not bound:
            return _rebuild(n, lambda c, _i: visit(c, renames))
        inner = {**renames, **{v: f"{v}@{name}" for v in bound}}
        out = _rebuild(n, lambda c, in_scope: visit(c, inner if in_scope else renames))
        if isinstance(out, Comprehension):
            out.var = inner[out.var]
            if out.var2:
                out.var2 = inner[out.var2]
        elif isinstance(out, (Bind, OptMap)):
            out.var = inner[out.var]
        return out

    del params  # parameters keep their names; they are replaced at the call sites
    return visit(body, {})


def free_names(node: Node) -> frozenset[str]:
    """The identifiers ``node`` reads that no macro in it binds."""
    out: set[str] = set()

    def visit(n: Node, scope: frozenset[str]) -> Node:
        if isinstance(n, Ident) and n.name not in scope:
            out.add(n.name)
            return n
        inner = scope | frozenset(_bound(n))
        return _rebuild(n, lambda c, in_scope: visit(c, inner if in_scope else scope))

    visit(node, frozenset())
    return frozenset(out)


__all__ = [
    "MAX_INLINED_NODES",
    "Constant",
    "Definition",
    "Definitions",
    "InlineTooLarge",
    "inline",
    "prepare",
    "too_deep",
]
