"""Parsing CEL text with cel-python's parser into charter's own small, bounded AST."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

import celpy.celtypes as ct
from celpy.celparser import CELParseError, CELParser
from celpy.evaluation import CELEvalError, celbytes, celstr

from charter.cel.limits import Limits
from charter.cel.types import CelProblem, ProblemKind

MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_NONSTANDARD_MACROS = frozenset({"reduce", "min"})

_PARSE_LOCK = threading.Lock()
_TOKEN = re.compile(r"""[rRbB]{0,2}(\'\'\'|\"\"\"|'|")(?:\\.|(?!\1).)*?\1|[A-Za-z_0-9.]+|\S""", re.S)
_OPEN = frozenset("([{")
_CLOSE = frozenset(")]}")


@dataclass(slots=True)
class Node:
    """Base of all AST nodes: character offsets [start, end) into the source text."""

    start: int
    end: int


@dataclass(slots=True)
class Lit(Node):
    value: Any  # a celtypes value, or a CELEvalError for a literal that cel-python rejects
    token_type: str = ""


@dataclass(slots=True)
class Ident(Node):
    name: str


@dataclass(slots=True)
class Select(Node):
    operand: Node
    field: str


@dataclass(slots=True)
class Index(Node):
    operand: Node
    index: Node


@dataclass(slots=True)
class Call(Node):
    name: str
    args: list[Node]


@dataclass(slots=True)
class Method(Node):
    target: Node
    name: str
    args: list[Node]


@dataclass(slots=True)
class Comprehension(Node):
    target: Node
    macro: str
    var: str
    body: Node


@dataclass(slots=True)
class ListLit(Node):
    items: list[Node]


@dataclass(slots=True)
class MapLit(Node):
    entries: list[tuple[Node, Node]]


@dataclass(slots=True)
class Unary(Node):
    op: str  # "!" or "-"
    operand: Node


@dataclass(slots=True)
class Binary(Node):
    op: str  # < <= > >= == != in + - * / %
    left: Node
    right: Node


@dataclass(slots=True)
class Logic(Node):
    op: str  # "&&" or "||"
    operands: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class Cond(Node):
    cond: Node
    then: Node
    other: Node


class ParseFailure(Exception):
    """Internal: carries compile problems out of the parser."""

    def __init__(self, problems: list[CelProblem]) -> None:
        super().__init__(problems[0].message if problems else "")
        self.problems = problems


_REL = {
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
}


def _offset(text: str, line: int | None, column: int | None) -> int:
    if not line or not column:
        return 0
    lines = text.split("\n")
    return min(len(text), sum(len(ln) + 1 for ln in lines[: line - 1]) + column - 1)


def _lark_depth(tree: Any, bound: int) -> int:
    """Depth of the raw parse tree, computed without recursion; stops early past `bound`."""
    best = 0
    stack: list[tuple[Any, int]] = [(tree, 1)]
    while stack:
        node, d = stack.pop()
        if d > best:
            best = d
            if best > bound:
                return best
        for c in getattr(node, "children", ()):
            if hasattr(c, "data"):
                stack.append((c, d + 1))
    return best


def parse(text: str, limits: Limits) -> Node:
    """Parse and bound-check `text`; raise ParseFailure with problems on failure."""
    n = len(text)
    if n > limits.max_length:
        raise ParseFailure(
            [
                CelProblem(
                    ProblemKind.TOO_COMPLEX,
                    f"the condition is too long ({n} characters; the limit is {limits.max_length})",
                    0,
                    n,
                    "split it into several smaller conditions",
                )
            ]
        )
    _prescan(text, limits)
    if not text.strip():
        raise ParseFailure([CelProblem(ProblemKind.SYNTAX, "the condition is empty", 0, n)])
    # The grammar module builds nodes from this module's classes, so it is imported here.
    from charter.cel.grammar import lark_parser, parse_fast
    from charter.syntax.lalr import NoFastPath

    bound = min(600, max(64, limits.max_depth * 12))
    try:
        node, tree_depth = parse_fast(text, limits)
    except NoFastPath:
        pass  # syntax errors and problems: the parse-tree path below reports them
    else:
        try:
            too_deep = tree_depth > bound or depth(node) > limits.max_depth
        except RecursionError:
            too_deep = True
        if too_deep:
            raise ParseFailure([_too_deep(limits, n)])
        return node
    lark_parser()  # CELParser then reuses the cached parser instead of building its own
    try:
        with _PARSE_LOCK:
            tree = CELParser().parse(text)
    except CELParseError as ex:
        pos = _offset(text, ex.line, ex.column)
        token = getattr(ex.__context__, "token", None)
        if pos >= n or getattr(token, "type", None) == "$END":
            msg = "the condition ends too early (something is missing at the end)"
        else:
            msg = f"unexpected {text[pos]!r} at character {pos + 1}"
        raise ParseFailure(
            [CelProblem(ProblemKind.SYNTAX, f"syntax error: {msg}", pos, min(pos + 1, n))]
        ) from None
    except RecursionError:
        raise ParseFailure([_too_deep(limits, n)]) from None
    if _lark_depth(tree, bound) > bound:
        raise ParseFailure([_too_deep(limits, n)])
    builder = _Builder(text, limits)
    try:
        node = builder.build(tree)
    except RecursionError:
        raise ParseFailure([_too_deep(limits, n)]) from None
    if builder.problems:
        raise ParseFailure(builder.problems)
    if depth(node) > limits.max_depth:
        raise ParseFailure([_too_deep(limits, n)])
    return node


def _prescan(text: str, limits: Limits) -> None:
    """Reject token floods and deep bracket nesting before the (recursive, slow) parser runs."""
    tokens = 0
    level = 0
    for m in _TOKEN.finditer(text):
        tokens += 1
        tok = m.group()
        if tok in _OPEN:
            level += 1
            if level > limits.max_depth:
                raise ParseFailure([_too_deep(limits, len(text))])
        elif tok in _CLOSE:
            level -= 1
    if tokens > limits.max_tokens:
        raise ParseFailure(
            [
                CelProblem(
                    ProblemKind.TOO_COMPLEX,
                    f"the condition has too many parts ({tokens} tokens; the limit is {limits.max_tokens})",
                    0,
                    len(text),
                    "split it into several smaller conditions",
                )
            ]
        )


def _too_deep(limits: Limits, n: int) -> CelProblem:
    return CelProblem(
        ProblemKind.TOO_COMPLEX,
        f"the condition is nested too deeply (the limit is {limits.max_depth} levels)",
        0,
        n,
        "simplify it, or split it into several conditions",
    )


def children(node: Node) -> list[Node]:
    """The direct sub-expressions of a node."""
    if isinstance(node, Select):
        return [node.operand]
    if isinstance(node, Index):
        return [node.operand, node.index]
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, Method):
        return [node.target, *node.args]
    if isinstance(node, Comprehension):
        return [node.target, node.body]
    if isinstance(node, ListLit):
        return list(node.items)
    if isinstance(node, MapLit):
        return [x for kv in node.entries for x in kv]
    if isinstance(node, Unary):
        return [node.operand]
    if isinstance(node, Binary):
        return [node.left, node.right]
    if isinstance(node, Logic):
        return list(node.operands)
    if isinstance(node, Cond):
        return [node.cond, node.then, node.other]
    return []


def depth(node: Node) -> int:
    """Nesting depth of the AST (an &&/|| chain counts as one level)."""
    kids = children(node)
    return 1 + max((depth(k) for k in kids), default=0)


def size(node: Node) -> int:
    """Number of nodes in the AST."""
    return 1 + sum(size(k) for k in children(node))


class _Builder:
    """Turns the lark parse tree (handled duck-typed) into AST nodes."""

    def __init__(self, text: str, limits: Limits) -> None:
        self.text = text
        self.limits = limits
        self.problems: list[CelProblem] = []

    def _span(self, t: Any) -> tuple[int, int]:
        if hasattr(t, "data"):
            m = t.meta
            return (getattr(m, "start_pos", 0) or 0, getattr(m, "end_pos", 0) or 0)
        return (t.start_pos or 0, t.end_pos or 0)

    def _problem(self, kind: ProblemKind, msg: str, t: Any, help: str | None = None) -> Node:
        s, e = self._span(t)
        self.problems.append(CelProblem(kind, msg, s, e, help))
        return Lit(s, e, None, "NULL_LIT")

    def build(self, t: Any) -> Node:
        data = t.data
        kids = t.children
        s, e = self._span(t)
        if data in ("expr",):
            if len(kids) == 1:
                return self.build(kids[0])
            return Cond(s, e, self.build(kids[0]), self.build(kids[1]), self.build(kids[2]))
        if data in ("conditionalor", "conditionaland"):
            if len(kids) == 1:
                return self.build(kids[0])
            op = "||" if data == "conditionalor" else "&&"
            left = self.build(kids[0])
            right = self.build(kids[1])
            if isinstance(left, Logic) and left.op == op and left.start == s:
                left.operands.append(right)
                left.end = e
                return left
            return Logic(s, e, op, [left, right])
        if data in ("relation", "addition", "multiplication"):
            if len(kids) == 1:
                return self.build(kids[0])
            op_tree, right = kids
            left = self.build(op_tree.children[0])
            return Binary(s, e, _REL[op_tree.data], left, self.build(right))
        if data == "unary":
            if len(kids) == 1:
                return self.build(kids[0])
            op = "!" if kids[0].data == "unary_not" else "-"
            return Unary(s, e, op, self.build(kids[1]))
        if data in ("member", "primary", "paren_expr"):
            return self.build(kids[0])
        if data == "member_dot":
            return Select(s, e, self.build(kids[0]), str(kids[1].value))
        if data == "member_index":
            return Index(s, e, self.build(kids[0]), self.build(kids[1]))
        if data == "member_dot_arg":
            return self._method(t, s, e)
        if data == "ident":
            return Ident(s, e, str(kids[0].value))
        if data == "ident_arg":
            args = [self.build(x) for x in kids[1].children] if len(kids) > 1 else []
            return Call(s, e, str(kids[0].value), args)
        if data == "literal":
            return self._literal(kids[0], s, e)
        if data == "list_lit":
            items = list(kids[0].children) if kids else []
            if len(items) > self.limits.max_list_elements:
                return self._too_many(t, len(items))
            return ListLit(s, e, [self.build(x) for x in items])
        if data == "map_lit":
            flat = list(kids[0].children) if kids else []
            if len(flat) // 2 > self.limits.max_list_elements:
                return self._too_many(t, len(flat) // 2)
            nodes = [self.build(x) for x in flat]
            return MapLit(s, e, list(zip(nodes[0::2], nodes[1::2], strict=True)))
        if data in ("dot_ident", "dot_ident_arg"):
            return self._problem(
                ProblemKind.UNSUPPORTED,
                "names starting with '.' are not supported",
                t,
                "remove the leading '.'",
            )
        if data == "member_object":
            return self._problem(
                ProblemKind.UNSUPPORTED,
                "message construction (Type{field: value}) is not supported",
                t,
            )
        return self._problem(ProblemKind.UNSUPPORTED, f"unsupported construct '{data}'", t)

    def _too_many(self, t: Any, n: int) -> Node:
        return self._problem(
            ProblemKind.TOO_COMPLEX,
            f"a list or map literal has too many elements ({n}; the limit is "
            f"{self.limits.max_list_elements})",
            t,
        )

    def _method(self, t: Any, s: int, e: int) -> Node:
        kids = t.children
        name = str(kids[1].value)
        arg_trees = list(kids[2].children) if len(kids) > 2 else []
        target = self.build(kids[0])
        if name in _NONSTANDARD_MACROS:
            return self._problem(ProblemKind.UNSUPPORTED, f"'{name}()' is not supported", t)
        if name in MACROS:
            if len(arg_trees) != 2:
                return self._problem(
                    ProblemKind.SYNTAX,
                    f"{name}() needs a variable name and an expression, e.g. list.{name}(x, x > 0)",
                    t,
                )
            var = self.build(arg_trees[0])
            if not isinstance(var, Ident):
                return self._problem(
                    ProblemKind.SYNTAX,
                    f"the first argument of {name}() must be a simple variable name",
                    arg_trees[0],
                )
            return Comprehension(s, e, target, name, var.name, self.build(arg_trees[1]))
        return Method(s, e, target, name, [self.build(x) for x in arg_trees])

    def _literal(self, tok: Any, s: int, e: int) -> Node:
        ttype = str(tok.type)
        raw = str(tok.value)
        if ttype in ("STRING_LIT", "MLSTRING_LIT", "BYTES_LIT") and (
            len(raw) > self.limits.max_string_literal
        ):
            return self._problem(
                ProblemKind.TOO_COMPLEX,
                f"a text literal is too long ({len(raw)} characters; the limit is "
                f"{self.limits.max_string_literal})",
                tok,
            )
        value: Any
        try:
            if ttype == "FLOAT_LIT":
                value = ct.DoubleType(raw)
            elif ttype == "INT_LIT":
                value = ct.IntType(raw)
            elif ttype == "UINT_LIT":
                value = ct.UintType(raw[:-1])
            elif ttype in ("MLSTRING_LIT", "STRING_LIT"):
                value = celstr(tok)
            elif ttype == "BYTES_LIT":
                value = celbytes(tok)
            elif ttype == "BOOL_LIT":
                value = ct.BoolType(raw.lower() == "true")
            elif ttype == "NULL_LIT":
                value = None
            else:
                return self._problem(ProblemKind.UNSUPPORTED, f"unsupported literal {raw}", tok)
        except ValueError as ex:
            value = CELEvalError(ex.args[0] if ex.args else "invalid literal")
        return Lit(s, e, value, ttype)
