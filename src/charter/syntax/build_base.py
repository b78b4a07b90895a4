"""The AST builder's shared parts: spans, names, durations, numbers and the problems they raise."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from lark import Token, Transformer
from lark.tree import Meta

from charter.diagnostics import Span
from charter.syntax import ast

_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: Longest duration accepted anywhere (10 years); longer ones are a typo (documented in
#: docs/diagnostics.md, E105).
MAX_DURATION_SECONDS = 3650 * 86400


class SyntaxProblem(Exception):
    """A semantic problem found while building the AST (bad number, duplicate clause...)."""

    def __init__(self, code: str, message: str, span: Span, help: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.span = span
        self.help = help


def parse_duration_text(text: str) -> float:
    """Seconds in a duration literal like ``1h30m``."""
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def unquote(text: str) -> str:
    """The value of a double-quoted string literal."""
    body = text[1:-1]
    out = []
    i = 0
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], body[i + 1]))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class AstBase(Transformer[Token, Any]):
    """Span and literal helpers every part of the AST builder uses."""

    def __init__(self, path: str):
        super().__init__(visit_tokens=False)
        self.path = path

    # ---- spans ----------------------------------------------------------------------------
    def _tok_span(self, tok: Token) -> Span:
        return Span(
            self.path,
            tok.line or 1,
            tok.column or 1,
            tok.end_line or tok.line or 1,
            tok.end_column or tok.column or 1,
            tok.start_pos or 0,
            tok.end_pos or 0,
        )

    def _meta_span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.path, 1, 1, 1, 1)
        return Span(
            self.path,
            meta.line,
            meta.column,
            meta.end_line,
            meta.end_column,
            meta.start_pos,
            meta.end_pos,
        )

    def _name(self, tok: Token) -> ast.Name:
        return ast.Name(value=str(tok), span=self._tok_span(tok))

    def _duration(self, tok: Token) -> ast.Duration:
        text = str(tok)
        seconds = parse_duration_text(text)
        if seconds <= 0:
            raise SyntaxProblem(
                "E105",
                f"the duration {text} is zero",
                self._tok_span(tok),
                "use a positive duration such as 30s, 5m or 4h",
            )
        if seconds > MAX_DURATION_SECONDS:
            raise SyntaxProblem(
                "E105",
                f"the duration {text} is too long",
                self._tok_span(tok),
                f"durations go up to {MAX_DURATION_SECONDS // 86400}d (10 years)",
            )
        return ast.Duration(text=text, seconds=seconds, span=self._tok_span(tok))

    def _number(self, tok: Token) -> Decimal:
        try:
            return Decimal(str(tok).replace("_", ""))
        except InvalidOperation as exc:  # pragma: no cover - the lexer only lets digits through
            raise SyntaxProblem("E104", f"'{tok}' is not a number", self._tok_span(tok)) from exc

    def _int(self, tok: Token) -> int:
        text = str(tok).replace("_", "")
        if len(text) > 18:
            raise SyntaxProblem(
                "E104",
                f"the number {tok} is too large",
                self._tok_span(tok),
                "use a number below 10^18",
            )
        return int(text)
