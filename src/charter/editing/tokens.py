"""Semantic tokens: each name coloured by what it declares or refers to, keywords, literals, and
inside conditions the CEL roots, fields and functions (one token never spans two lines)."""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from charter.editing.cel_catalog import BY_NAME
from charter.editing.symbols import Occurrence, SymbolIndex, SymbolKind
from charter.editing.text import LineIndex
from charter.syntax import ast, grammar_text


class TokenType(enum.Enum):
    """Token types (LSP's standard names, so every theme colours them)."""

    NAMESPACE = "namespace"
    TYPE = "type"
    CLASS = "class"
    ENUM = "enum"
    INTERFACE = "interface"
    STRUCT = "struct"
    PARAMETER = "parameter"
    VARIABLE = "variable"
    PROPERTY = "property"
    ENUM_MEMBER = "enumMember"
    EVENT = "event"
    FUNCTION = "function"
    METHOD = "method"
    KEYWORD = "keyword"
    COMMENT = "comment"
    STRING = "string"
    NUMBER = "number"
    OPERATOR = "operator"
    DECORATOR = "decorator"


class TokenModifier(enum.Enum):
    """Token modifiers (bit i of the LSP modifier set is member i)."""

    DECLARATION = "declaration"
    READONLY = "readonly"


TOKEN_TYPES = list(TokenType)
TOKEN_MODIFIERS = list(TokenModifier)

_KIND_TOKEN = {
    SymbolKind.POLICY: TokenType.NAMESPACE,
    SymbolKind.FILE: TokenType.STRING,
    SymbolKind.UNIT: TokenType.ENUM_MEMBER,
    SymbolKind.ROLE: TokenType.TYPE,
    SymbolKind.ATTRIBUTE: TokenType.PROPERTY,
    SymbolKind.CONTEXT: TokenType.PROPERTY,
    SymbolKind.AGENT: TokenType.VARIABLE,
    SymbolKind.TOOL: TokenType.FUNCTION,
    SymbolKind.TOOL_ARG: TokenType.PARAMETER,
    SymbolKind.TAG: TokenType.DECORATOR,
    SymbolKind.CATEGORY: TokenType.ENUM,
    SymbolKind.GROUP: TokenType.CLASS,
    SymbolKind.ESCALATION: TokenType.INTERFACE,
    SymbolKind.SIGNAL: TokenType.EVENT,
    SymbolKind.SIGNAL_SOURCE: TokenType.ENUM,
    SymbolKind.RULE: TokenType.STRUCT,
    SymbolKind.CONSTANT: TokenType.ENUM_MEMBER,
    SymbolKind.CONDITION: TokenType.FUNCTION,
    SymbolKind.GRANT: TokenType.STRUCT,
}


def token_type(kind: SymbolKind) -> TokenType:
    """The token type of a symbol kind (a kind added later is a variable until mapped)."""
    return _KIND_TOKEN.get(kind, TokenType.VARIABLE)


@dataclass(frozen=True)
class Token:
    """One token: 1-based line and column, length in code points, type and modifiers."""

    line: int
    column: int
    length: int
    type: TokenType
    modifiers: frozenset[TokenModifier] = frozenset()


@functools.cache
def keywords() -> frozenset[str]:
    """Every word literal of the grammar (the TextMate grammar's keyword list comes from it too)."""
    body = "\n".join(line.split("//", 1)[0] for line in grammar_text().splitlines())
    return frozenset(re.findall(r'"([a-z][a-z-]*)"i?', body))


_LEX = re.compile(
    r"(?P<comment>#[^\n]*)|(?P<string>\"(?:[^\"\\\n]|\\.)*\"?)"
    r"|(?P<number>\d[\d_]*(?:\.\d+)?(?:ms|s|m|h|d|w)?(?![\w.-]))"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*(?:[-.][A-Za-z0-9_]+)*)"
)
_CEL_LEX = re.compile(
    r"(?P<string>\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?)|(?P<number>\d+(?:\.\d+)?u?)"
    r"|(?P<dot>\.\s*)?(?P<ident>[A-Za-z_][A-Za-z0-9_]*)(?P<call>\s*\()?"
    r"|(?P<op>&&|\|\||==|!=|<=|>=|[<>!?:+\-*/%])"
)
_CEL_WORDS = {"true", "false", "null", "in"}


def tokens(text: str, module: ast.Module | None, index: SymbolIndex | None, path: str) -> list[Token]:
    """Every token of one file, in order."""
    lines = LineIndex(text)
    conditions = sorted(_conditions(module)) if module is not None else []
    by_start: dict[int, Occurrence] = {}
    if index is not None:
        for occ in index.in_file(path):
            by_start.setdefault(occ.span.start, occ)
    out: list[Token] = []
    pos = 0
    for start, end in [*conditions, (len(text), len(text))]:
        out.extend(_language(text, pos, start, lines, by_start))
        out.extend(_cel(text, start, end, lines, by_start))
        pos = end
    return out


def _conditions(module: ast.Module) -> Iterator[tuple[int, int]]:
    for item in module.items:
        if not isinstance(item, ast.Rule):
            continue
        for clause in item.clauses:
            if isinstance(clause, ast.ConditionClause):
                yield clause.text_span.start, clause.text_span.start + len(clause.text)
            elif isinstance(clause, ast.SignalClause) and clause.where is not None:
                yield clause.where_span.start, clause.where_span.start + len(clause.where)


def _token(lines: LineIndex, start: int, end: int, kind: TokenType, decl: bool = False) -> Iterator[Token]:
    """A token, cut at line ends."""
    mods = frozenset({TokenModifier.DECLARATION}) if decl else frozenset()
    while start < end:
        line, col = lines.position(start)
        eol = lines.offset(line, len(lines.line_text(line)) + 1)
        stop = min(end, eol)
        if stop > start:
            yield Token(line, col, stop - start, kind, mods)
        start = eol + 1


def _language(
    text: str, pos: int, end: int, lines: LineIndex, by_start: dict[int, Occurrence]
) -> Iterator[Token]:
    kw = keywords()
    for m in _LEX.finditer(text, pos, end):
        kind = m.lastgroup
        if kind == "comment":
            yield from _token(lines, m.start(), m.end(), TokenType.COMMENT)
        elif kind == "string":
            yield from _token(lines, m.start(), m.end(), TokenType.STRING)
        elif kind == "number":
            yield from _token(lines, m.start(), m.end(), TokenType.NUMBER)
        else:
            occ = by_start.get(m.start())
            if occ is not None:
                yield from _token(lines, m.start(), occ.span.end, token_type(occ.kind), occ.declaration)
            elif m.group(0) in kw:
                yield from _token(lines, m.start(), m.end(), TokenType.KEYWORD)


def _cel(
    text: str, start: int, end: int, lines: LineIndex, by_start: dict[int, Occurrence]
) -> Iterator[Token]:
    for m in _CEL_LEX.finditer(text, start, end):
        if m.group("string"):
            yield from _token(lines, m.start(), m.end(), TokenType.STRING)
        elif m.group("number"):
            yield from _token(lines, m.start(), m.end(), TokenType.NUMBER)
        elif m.group("op"):
            yield from _token(lines, m.start(), m.end(), TokenType.OPERATOR)
        elif m.group("ident"):
            s, e = m.start("ident"), m.end("ident")
            name = m.group("ident")
            occ = by_start.get(s)
            if occ is not None:
                kind = token_type(occ.kind)
            elif m.group("call") and name in BY_NAME:
                kind = TokenType.METHOD if m.group("dot") else TokenType.FUNCTION
            elif name in _CEL_WORDS:
                kind = TokenType.KEYWORD
            else:
                kind = TokenType.PROPERTY if m.group("dot") else TokenType.VARIABLE
            yield from _token(lines, s, e, kind)


def encode(tokens_: list[Token]) -> list[int]:
    """LSP's relative encoding (line delta, start delta, length, type, modifiers), 0-based.

    Columns and lengths here are code points; the language server converts them for clients that
    count UTF-16 units (a line with characters beyond the BMP) before encoding.
    """
    data: list[int] = []
    prev_line, prev_col = 0, 0
    for t in tokens_:
        line, col = t.line - 1, t.column - 1
        delta_col = col - prev_col if line == prev_line else col
        bits = sum(1 << TOKEN_MODIFIERS.index(m) for m in t.modifiers)
        data += [line - prev_line, delta_col, t.length, TOKEN_TYPES.index(t.type), bits]
        prev_line, prev_col = line, col
    return data
