"""Parses policy text into the typed AST, turning every failure into diagnostics (never a traceback)."""

from __future__ import annotations

import gc
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lark import Lark, Token, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.exceptions import VisitError
from lark.visitors import _vargs_meta

from charter.diagnostics import Code, Diagnostic, Span, did_you_mean, error
from charter.files import FileError, FileProblem, read_bounded
from charter.syntax import ast
from charter.syntax.lalr import Build, Driver, NoFastPath, cached_lark
from charter.syntax.transform import SyntaxProblem, ToAst

#: Largest policy file accepted, in bytes (documented in docs/language.md).
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Deepest bracket nesting accepted anywhere in a file.
MAX_NESTING = 64
#: Syntax errors reported per file before giving up.
MAX_SYNTAX_ERRORS = 20

_LOCK = threading.Lock()
_PARSER: Lark | None = None
_DRIVER: Driver | None = None

_TOP_KEYWORDS = [
    "policy",
    "include",
    "units",
    "roles",
    "attribute",
    "context",
    "agents",
    "agent",
    "tool",
    "group",
    "signal",
    "rank",
    "stops",
    "escalation",
    "permit",
    "forbid",
    "halt",
    "escalate",
    "require",
    "budget",
    "rate",
    "tripwire",
    "on",
    "grant",
]
_TOP_LINE = re.compile(r"^(?:{})\b".format("|".join(_TOP_KEYWORDS)), re.M)

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[-.][A-Za-z0-9_]+)*")

_FRIENDLY = {
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COLON": "':'",
    "MORETHAN": "'>'",
    "NAME": "a name",
    "STRING": "a quoted string",
    "NUMBER": "a number",
    "INT": "a whole number",
    "DURATION": "a duration such as 5m or 4h",
    "CEL": "a condition",
    "$END": "the end of the file",
}


def grammar_text() -> str:
    """The grammar shipped inside the package (identical to grammar/charter.lark)."""
    return resources.files("charter.syntax").joinpath("charter.lark").read_text("utf-8")


def _parser() -> Lark:
    # Building the LALR tables and checking terminal collisions (strict) takes seconds; the built
    # parser is cached on disk keyed by the grammar's hash, so later processes load it in ms.
    global _PARSER
    with _LOCK:
        if _PARSER is None:
            text = grammar_text()
            options = {
                "parser": "lalr",
                "strict": True,
                "propagate_positions": True,
                "maybe_placeholders": True,
            }
            _PARSER = cached_lark(text, "grammar", **options)
        return _PARSER


@dataclass(frozen=True)
class ParseResult:
    """A parsed module (None when syntax errors prevented one) and the diagnostics found."""

    module: ast.Module | None
    diagnostics: tuple[Diagnostic, ...]
    source: str


def _friendly(term: str) -> str:
    if term in _FRIENDLY:
        return _FRIENDLY[term]
    if term.startswith("__ANON") or term.startswith("_"):
        return "a symbol"
    return f"'{term.lower().replace('_', '-')}'"


def _expected_list(expected: set[str]) -> str:
    names = sorted({_friendly(t) for t in expected})
    if len(names) > 6:
        names = [*names[:6], "..."]
    return ", ".join(names)


def decode(path: str, data: bytes) -> tuple[str | None, list[Diagnostic]]:
    """Decode file bytes as UTF-8 text, or explain why they are not a policy file."""
    if len(data) > MAX_FILE_BYTES:
        return None, [
            error(
                Code.E003_TOO_LARGE,
                f"file is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,}",
                Span.point(path),
                "split the policy into several files joined with include",
            )
        ]
    if b"\x00" in data:
        offset = data.index(b"\x00")
        line = data.count(b"\n", 0, offset) + 1
        return None, [
            error(
                Code.E002_NOT_UTF8,
                "this is a binary file, not a policy",
                Span.point(path, line),
                "policy files are UTF-8 text",
            )
        ]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            error(
                Code.E002_NOT_UTF8,
                f"invalid UTF-8 byte 0x{data[exc.start]:02x}",
                Span.point(path, line, col),
                "save the file as UTF-8",
            )
        ]
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, []


_NEST_EVENT = re.compile(r"[\"'#()\[\]{}]")


def _check_nesting(path: str, text: str) -> Diagnostic | None:
    """E004 at the first bracket nested deeper than MAX_NESTING outside strings and comments.

    Strings and comments end at the end of their line; a backslash in a string escapes the next
    character on the line (one left pending at a line's end escapes the next string's first).
    """
    depth = 0
    escaped = False
    pos, n = 0, len(text)
    find = _NEST_EVENT.search
    while True:
        m = find(text, pos)
        if m is None:
            return None
        ch = m.group()
        pos = m.end()
        if ch == "#":
            pos = text.find("\n", pos)
            if pos < 0:
                return None
        elif ch == '"' or ch == "'":
            while pos < n:
                c = text[pos]
                if c == "\n":
                    break
                pos += 1
                if escaped:
                    escaped = False
                elif c == "\\":
                    escaped = True
                elif c == ch:
                    break
        elif ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                line, col = _line_col(text, m.start())
                return error(
                    Code.E004_TOO_DEEP,
                    f"brackets nest more than {MAX_NESTING} levels deep",
                    Span(path, line, col, line, col + 1),
                    "simplify the expression or split it into several rules",
                )
        elif depth:
            depth -= 1


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def _syntax_diag(path: str, exc: UnexpectedInput, text: str) -> Diagnostic:
    line = getattr(exc, "line", 1) or 1
    col = getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        ch = text[pos] if pos < len(text) else ""
        span = Span(path, line, col, line, col + 1, pos, pos + 1)
        if ch == '"':
            return error(
                Code.E102_UNTERMINATED_STRING,
                "unterminated string",
                span,
                'close the string with " on the same line',
            )
        allowed = _expected_list(set(exc.allowed or ()))
        if "CEL" in (exc.allowed or ()) and ch in "([{":
            return error(
                Code.E304_CEL_TOO_COMPLEX,
                "brackets in a condition nest more than 6 levels deep",
                span,
                "split the condition into several when clauses or simplify it",
            )
        shown = repr(ch) if ch.strip() else "whitespace"
        return error(
            Code.E101_SYNTAX,
            f"unexpected character {shown}",
            span,
            f"expected {allowed}" if allowed else None,
        )
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        last_line = text.count("\n") + 1
        wanted = _expected_list(set(getattr(exc, "expected", ()) or ()))
        return error(
            Code.E103_UNEXPECTED_EOF,
            "the file ends in the middle of a declaration or rule",
            Span.point(path, last_line, 1),
            f"expected {wanted}; is a closing '}}' missing?" if wanted else "is a '}' missing?",
        )
    assert isinstance(exc, UnexpectedToken)
    tok: Token = exc.token
    end_col = tok.end_column or col + 1
    span = Span(path, line, col, tok.end_line or line, end_col, tok.start_pos or 0, tok.end_pos or 0)
    expected = set(exc.expected or ())
    value = str(tok)
    kind = tok.type
    if kind == "CEL" and "CEL" not in expected:
        # The lexer fell back to a condition for an unknown word: report the word itself.
        word = _WORD.match(value)
        value = word.group(0) if word else (value.split() or [value])[0]
        kind = "NAME" if word else kind
        start = tok.start_pos or 0
        span = Span(path, line, col, line, col + len(value), start, start + len(value))
    helptext = f"expected {_expected_list(expected)}"
    if kind == "NAME":
        keywords = [t.lower().replace("_", "-") for t in expected if t.isupper() and t.isalpha()]
        hint = did_you_mean(value, keywords)
        if hint:
            helptext = hint
        elif "RBRACE" in expected:
            helptext = f"'{value}' does not start a clause here; expected {_expected_list(expected)}"
    return error(Code.E101_SYNTAX, f"unexpected '{value}'", span, helptext)


def parse_text(text: str, path: str = "<string>") -> ParseResult:
    """Parse policy source text. Never raises for bad input: problems come back as diagnostics."""
    # Parsing allocates many small objects that all stay alive (tokens, AST nodes, spans): the
    # cyclic GC would rescan them again and again (superlinear on big files), so it is paused.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse_text(text, path)
    finally:
        if enabled:
            gc.enable()


def _driver() -> Driver:
    global _DRIVER
    parser = _parser()
    with _LOCK:
        if _DRIVER is None:
            # Whitespace and comments are skipped before each token: no terminal of the grammar
            # starts with whitespace or '#' (a condition's first character cannot be either).
            skip = r"(?:[ \t\f\r\n]+|#[^\n]*)+"
            _DRIVER = Driver(parser, "start", maybe_placeholders=True, skip=skip)
        return _DRIVER


def _callbacks(builder: ToAst) -> Callable[[str], Build | None]:
    """The transformer's methods as driver callbacks, called as Lark's Transformer calls them."""

    def find(name: str) -> Build | None:
        method = getattr(builder, name, None)
        if method is None:
            if name.startswith("_"):
                return None
            return lambda meta, children: builder.__default__(name, children, meta)
        wrapper = getattr(method, "visit_wrapper", None)
        if wrapper is None:
            return lambda meta, children: method(children)
        if wrapper is _vargs_meta:
            base: Build = method.base_func  # the method itself: (meta, children), as Build
            return base
        return lambda meta, children: wrapper(method, name, children, meta)

    return find


def _fast_module(text: str, path: str) -> ast.Module | None:
    """The module built while parsing (no parse tree); None when the text needs the full parser."""
    try:
        module, _ = _driver().parse(text, _callbacks(ToAst(path)))
    except (NoFastPath, SyntaxProblem):
        # Syntax errors, and problems the AST builder found, are reported by the full parser,
        # which sees every syntax error of the file before any of those problems.
        return None
    assert isinstance(module, ast.Module)
    return module


#: characters refused anywhere in policy text (strings and comments too): C0/C1 controls other than
#: tab, LF, CR and form feed (terminal escapes would reach every place that shows the text), and
#: bidi controls and line separators, which make a reviewer see other text than the compiler reads
#: ("Trojan Source")
_UNSAFE_CHAR = re.compile(
    "[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _line_col(text: str, at: int) -> tuple[int, int]:
    """The 1-based line and column of offset ``at`` in ``text``."""
    return text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1


def _check_chars(path: str, text: str) -> Diagnostic | None:
    """E002 at the first character no policy text may hold (the text is never echoed raw)."""
    m = _UNSAFE_CHAR.search(text)
    if m is None:
        return None
    at = m.start()
    line, col = _line_col(text, at)
    return error(
        Code.E002_NOT_UTF8,
        f"control character U+{ord(m.group()):04X} in policy text",
        Span(path, line, col, line, col + 1, at, at + 1),
        "remove it: policy text holds printable characters, tabs and line breaks only",
    )


def _parse_text(text: str, path: str) -> ParseResult:
    bad = _check_chars(path, text)
    if bad is not None:
        return ParseResult(None, (bad,), text)
    if not text.strip():
        return ParseResult(ast.Module(path=path, items=()), (), text)
    deep = _check_nesting(path, text)
    if deep is not None:
        return ParseResult(None, (deep,), text)
    fast = _fast_module(text, path)
    if fast is not None:
        return _with_comments(fast, path, text)
    parser = _parser()
    diags: list[Diagnostic] = []
    remaining = text
    tree = None
    for _ in range(MAX_SYNTAX_ERRORS):
        try:
            tree = parser.parse(remaining)
            break
        except UnexpectedInput as exc:
            diags.append(_syntax_diag(path, exc, text))
            # Recover: blank everything up to the next line that starts a declaration or rule.
            pos = getattr(exc, "pos_in_stream", None)
            if pos is None:
                pos = len(remaining)
            nxt = _TOP_LINE.search(remaining, pos + 1)
            if nxt is None:
                tree = None
                break
            remaining = _blank(remaining[: nxt.start()]) + remaining[nxt.start() :]
            tree = None
        except RecursionError:
            diags.append(error(Code.E004_TOO_DEEP, "the file nests too deeply", Span.point(path)))
            return ParseResult(None, tuple(diags), text)
    if diags:
        return ParseResult(None, tuple(diags), text)
    assert tree is not None
    try:
        module = ToAst(path).transform(tree)
    except VisitError as exc:
        orig = exc.orig_exc
        if isinstance(orig, SyntaxProblem):
            return ParseResult(None, (error(Code(orig.code), orig.message, orig.span, orig.help),), text)
        if isinstance(orig, RecursionError):
            return ParseResult(
                None, (error(Code.E004_TOO_DEEP, "the file nests too deeply", Span.point(path)),), text
            )
        raise
    except RecursionError:
        return ParseResult(
            None, (error(Code.E004_TOO_DEEP, "the file nests too deeply", Span.point(path)),), text
        )
    return _with_comments(module, path, text)


def _with_comments(module: ast.Module, path: str, text: str) -> ParseResult:
    found = [
        ast.Comment(text=m.group(0), span=_offset_span(path, text, m.start(), m.end()))
        for m in _iter_comments(text)
    ]
    module = module.model_copy(update={"comments": tuple(found)})
    return ParseResult(module, (), text)


def _offset_span(path: str, text: str, start: int, end: int) -> Span:
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    return Span(path, line, col, line, col + (end - start), start, end)


_COMMENT_SCAN = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|#[^\n]*')


def _iter_comments(text: str) -> list[re.Match[str]]:
    return [m for m in _COMMENT_SCAN.finditer(text) if m.group(0).startswith("#")]


def parse_file(path: str | Path) -> ParseResult:
    """Read and parse one policy file; unreadable, binary, oversized or non-regular files (a device,
    a FIFO, a symlink loop) give diagnostics, read through charter.files (bounded, never blocking)."""
    p = Path(path)
    shown = str(path)
    try:
        data = read_bounded(p, MAX_FILE_BYTES)
    except FileError as exc:
        code = Code.E003_TOO_LARGE if exc.problem is FileProblem.TOO_LARGE else Code.E001_UNREADABLE
        help_ = (
            "split the policy into several files joined with include" if code is Code.E003_TOO_LARGE else None
        )
        return ParseResult(None, (error(code, exc.reason, Span.point(shown), help_),), "")
    text, diags = decode(shown, data)
    if text is None:
        return ParseResult(None, tuple(diags), "")
    return parse_text(text, shown)
