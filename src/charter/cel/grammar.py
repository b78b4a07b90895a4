"""cel-python's CEL grammar as a disk-cached LALR parser, and charter's CEL AST built while parsing.

Conditions are parsed by cel-python's grammar (``celpy/cel.lark``) with the options its
``CELParser`` uses. Building that parser takes about a second per process, so it is cached on
disk like charter's own grammar, and handed to ``CELParser`` so cel-python (the reference
evaluator) reuses it. Well-formed conditions are parsed by the tree-less driver
(:mod:`charter.syntax.lalr`), whose callbacks build the same nodes ``syntax._Builder`` builds from
the parse tree, with the same spans; everything else (syntax errors, unsupported constructs,
oversized literals) takes the parse-tree path, which reports it.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import celpy
from celpy.celparser import CELParser

from charter.cel.limits import Limits
from charter.cel.syntax import (
    _NONSTANDARD_MACROS,
    _REL,
    MACROS,
    Binary,
    Call,
    Comprehension,
    Cond,
    Ident,
    Index,
    ListLit,
    Logic,
    MapLit,
    Method,
    Node,
    Select,
    Unary,
    _Builder,
)
from charter.syntax.lalr import Bound, Build, Driver, Meta, NoFastPath, cached_lark

if TYPE_CHECKING:  # only the syntax package imports lark at run time
    from lark import Lark, Token

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}


def lark_parser() -> Lark:
    """cel-python's CEL parser (same grammar and options as ``CELParser``), built once, cached."""
    with _LOCK:
        found = _STATE.get("lark")
        if found is None:
            text = (Path(celpy.__file__).parent / "cel.lark").read_text()
            found = _STATE["lark"] = cached_lark(
                text,
                "cel",
                parser="lalr",
                start="expr",
                debug=True,
                g_regex_flags=re.M,
                lexer_callbacks={"IDENT": CELParser.ambiguous_literals},
                propagate_positions=True,
                maybe_placeholders=False,
                priority="invert",
            )
            if CELParser.CEL_PARSER is None:
                CELParser.CEL_PARSER = found
        return found


def _bound(limits: Limits) -> Bound:
    """The driver bound to the node-building callbacks for ``limits`` (one per distinct limits)."""
    parser = lark_parser()
    with _LOCK:
        driver = _STATE.get("driver")
        if driver is None:
            # Whitespace and // comments are skipped before each token: no CEL terminal starts
            # with whitespace, and Lark's lexer tries COMMENT before "/" (it is the longer one).
            driver = _STATE["driver"] = Driver(
                parser,
                "expr",
                maybe_placeholders=False,
                skip=r"(?:[\t\n\f\r ]+|//[^\n]*)+",
                track_depth=True,
            )
        bound: dict[Limits, Bound] = _STATE.setdefault("bound", {})
        found = bound.get(limits)
        if found is None:
            found = bound[limits] = driver.bind(_FastBuilder(limits).callbacks.get)
        return found


class _Op:
    """The operator rule of a binary operation (``relation_lt`` ...) with its left operand."""

    __slots__ = ("left", "op")

    def __init__(self, op: str, left: Node) -> None:
        self.op = op
        self.left = left


def _span(meta: Meta) -> tuple[int, int]:
    return (0, 0) if meta.empty else (meta.start_pos, meta.end_pos)


class _FastBuilder:
    """Callbacks building :mod:`charter.cel.syntax` nodes exactly as ``_Builder.build`` does."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.callbacks: dict[str, Build] = {
            "expr": self.expr,
            "conditionalor": self.conditionalor,
            "conditionaland": self.conditionaland,
            "relation": self.binary,
            "addition": self.binary,
            "multiplication": self.binary,
            "unary": self.unary,
            "unary_not": lambda meta, ch: "!",
            "unary_neg": lambda meta, ch: "-",
            "member": _first,
            "primary": _first,
            "paren_expr": _first,
            "member_dot": self.member_dot,
            "member_index": self.member_index,
            "member_dot_arg": self.member_dot_arg,
            "ident": self.ident,
            "ident_arg": self.ident_arg,
            "literal": self.literal,
            "list_lit": self.list_lit,
            "map_lit": self.map_lit,
            "exprlist": _children,
            "mapinits": _children,
        }
        for name, op in _REL.items():
            self.callbacks[name] = _operator(op)

    def expr(self, meta: Meta, ch: list[Any]) -> Node:
        if len(ch) == 1:
            return ch[0]
        s, e = _span(meta)
        return Cond(s, e, ch[0], ch[1], ch[2])

    def _logic(self, op: str, meta: Meta, ch: list[Any]) -> Node:
        if len(ch) == 1:
            return ch[0]
        s, e = _span(meta)
        left, right = ch
        if isinstance(left, Logic) and left.op == op and left.start == s:
            left.operands.append(right)
            left.end = e
            return left
        return Logic(s, e, op, [left, right])

    def conditionalor(self, meta: Meta, ch: list[Any]) -> Node:
        return self._logic("||", meta, ch)

    def conditionaland(self, meta: Meta, ch: list[Any]) -> Node:
        return self._logic("&&", meta, ch)

    def binary(self, meta: Meta, ch: list[Any]) -> Node:
        if len(ch) == 1:
            return ch[0]
        s, e = _span(meta)
        op, right = ch
        return Binary(s, e, op.op, op.left, right)

    def unary(self, meta: Meta, ch: list[Any]) -> Node:
        if len(ch) == 1:
            return ch[0]
        s, e = _span(meta)
        return Unary(s, e, ch[0], ch[1])

    def member_dot(self, meta: Meta, ch: list[Any]) -> Node:
        s, e = _span(meta)
        return Select(s, e, ch[0], str(ch[1].value))

    def member_index(self, meta: Meta, ch: list[Any]) -> Node:
        s, e = _span(meta)
        return Index(s, e, ch[0], ch[1])

    def member_dot_arg(self, meta: Meta, ch: list[Any]) -> Node:
        s, e = _span(meta)
        name = str(ch[1].value)
        args: list[Node] = ch[2] if len(ch) > 2 else []
        if name in _NONSTANDARD_MACROS:
            raise NoFastPath("unsupported macro")
        if name in MACROS:
            if len(args) != 2 or not isinstance(args[0], Ident):
                raise NoFastPath("malformed macro")
            return Comprehension(s, e, ch[0], name, args[0].name, args[1])
        return Method(s, e, ch[0], name, args)

    def ident(self, meta: Meta, ch: list[Any]) -> Node:
        s, e = _span(meta)
        return Ident(s, e, str(ch[0].value))

    def ident_arg(self, meta: Meta, ch: list[Any]) -> Node:
        s, e = _span(meta)
        return Call(s, e, str(ch[0].value), ch[1] if len(ch) > 1 else [])

    def literal(self, meta: Meta, ch: list[Token]) -> Node:
        s, e = _span(meta)
        # Literal values are the tree builder's own code; a problem it reports (a literal too
        # long) sends the condition to the parse-tree path, which reports it.
        tree_builder = _Builder("", self.limits)
        node = tree_builder._literal(ch[0], s, e)
        if tree_builder.problems:
            raise NoFastPath("literal problem")
        return node

    def list_lit(self, meta: Meta, ch: list[Any]) -> Node:
        s, e = _span(meta)
        items: list[Node] = ch[0] if ch else []
        if len(items) > self.limits.max_list_elements:
            raise NoFastPath("too many elements")
        return ListLit(s, e, items)

    def map_lit(self, meta: Meta, ch: list[Any]) -> Node:
        s, e = _span(meta)
        flat: list[Node] = ch[0] if ch else []
        if len(flat) // 2 > self.limits.max_list_elements:
            raise NoFastPath("too many elements")
        return MapLit(s, e, list(zip(flat[0::2], flat[1::2], strict=True)))


def _operator(op: str) -> Build:
    def build(meta: Meta, ch: list[Any]) -> _Op:
        return _Op(op, ch[0])

    return build


def _first(meta: Meta, ch: list[Any]) -> Any:
    return ch[0]


def _children(meta: Meta, ch: list[Any]) -> list[Any]:
    return ch


def parse_fast(text: str, limits: Limits) -> tuple[Node, int]:
    """The condition's AST and its parse-tree depth; :class:`NoFastPath` for any other outcome."""
    node, depth = _bound(limits).parse(text)
    assert isinstance(node, Node)
    return node, depth
