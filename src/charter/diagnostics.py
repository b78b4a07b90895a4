"""Source spans and diagnostics (stable codes, severities, rendering); imports nothing internal."""

from __future__ import annotations

import difflib
import enum
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from charter.errors import Error


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file: 1-based line/column of its start and end, plus byte offsets.

    Spans never take part in AST equality (nodes exclude them from comparison).
    """

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    start: int = 0
    end: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"

    def to_dict(self) -> dict[str, Any]:
        """The span as a JSON-ready mapping."""
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
        }

    @staticmethod
    def point(path: str, line: int = 1, column: int = 1) -> Span:
        """A zero-width span at one position (for file-level problems)."""
        return Span(path, line, column, line, column)


class Severity(enum.Enum):
    """How bad a diagnostic is."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Code(enum.Enum):
    """Stable diagnostic codes. The value is the code printed; never reuse or renumber one."""

    # input and limits
    E001_UNREADABLE = "E001"
    E002_NOT_UTF8 = "E002"
    E003_TOO_LARGE = "E003"
    E004_TOO_DEEP = "E004"
    E005_NO_POLICIES = "E005"
    E006_EMPTY = "E006"
    # syntax
    E101_SYNTAX = "E101"
    E102_UNTERMINATED_STRING = "E102"
    E103_UNEXPECTED_EOF = "E103"
    E104_BAD_NUMBER = "E104"
    E105_BAD_DURATION = "E105"
    E106_BAD_CLAUSE = "E106"
    E107_DUPLICATE_CLAUSE = "E107"
    E108_MISSING_CLAUSE = "E108"
    # resolve
    E201_UNKNOWN_NAME = "E201"
    E202_DUPLICATE = "E202"
    E203_INCLUDE_CYCLE = "E203"
    E204_MISSING_FILE = "E204"
    E205_BAD_INVENTORY = "E205"
    E206_BAD_HEADER = "E206"
    E207_BAD_NAME = "E207"
    E208_OUTSIDE_ROOT = "E208"
    # conditions (CEL) and types
    E301_CEL_SYNTAX = "E301"
    E302_CEL_UNKNOWN_NAME = "E302"
    E303_CEL_TYPE = "E303"
    E304_CEL_TOO_COMPLEX = "E304"
    E305_CEL_UNSUPPORTED = "E305"
    E306_CEL_NOT_BOOL = "E306"
    E307_CEL_WRONG_PLACE = "E307"
    E308_CEL_BAD_CALL = "E308"
    E309_CEL_BAD_PATTERN = "E309"
    E310_CEL_UNGUARDED_ARG = "E310"
    E311_CONDITION_READS_ARGS = "E311"
    E312_SCOPE_ARG = "E312"
    # semantics
    E401_WIDENS_PARENT = "E401"
    E402_BAD_VALUE = "E402"
    E403_BAD_QUORUM = "E403"
    E404_FAIL_OPEN_IN_CHILD = "E404"
    # analysis (warnings)
    W501_NEVER_FIRES = "W501"
    W502_PERMIT_SHADOWED = "W502"
    W503_BUDGET_NEVER_TRIPS = "W503"
    W504_QUORUM_UNREACHABLE = "W504"
    W505_UNUSED_TOOL = "W505"
    W506_NO_REASON = "W506"
    W507_FAIL_OPEN = "W507"
    W508_UNUSED_DECLARATION = "W508"
    W509_SUPPRESSION_WITHOUT_REASON = "W509"
    W510_CEL_ESCAPE = "W510"
    W511_LABEL_AS_PERMISSION = "W511"
    W512_SETTLED_TRIP_NO_EFFECT = "W512"
    # run limits
    E901_TOO_MANY_ERRORS = "E901"

    @property
    def slug(self) -> str:
        """The human name of the code, e.g. ``unknown-name``."""
        return self.name.split("_", 1)[1].lower().replace("_", "-")


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding: a stable code, severity, message, span and a help hint."""

    code: Code
    message: str
    span: Span
    severity: Severity = Severity.ERROR
    help: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def is_error(self) -> bool:
        """True when the diagnostic stops compilation."""
        return self.severity is Severity.ERROR

    def to_dict(self) -> dict[str, Any]:
        """The diagnostic as a JSON-ready mapping with stable field names."""
        return {
            "code": self.code.value,
            "name": self.code.slug,
            "severity": self.severity.value,
            "message": self.message,
            "help": self.help,
            "span": self.span.to_dict(),
        }


def error(code: Code, message: str, span: Span, help: str | None = None) -> Diagnostic:
    """Shorthand for an error diagnostic."""
    return Diagnostic(code, message, span, Severity.ERROR, help)


def warning(code: Code, message: str, span: Span, help: str | None = None) -> Diagnostic:
    """Shorthand for a warning diagnostic."""
    return Diagnostic(code, message, span, Severity.WARNING, help)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean 'x'?" hint for the closest candidate, or None."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


class CharterError(Error):
    """Raised at the API edge when loading or compiling fails; carries the diagnostics."""

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics = list(diagnostics)
        self.sources = sources or {}
        first = self.diagnostics[0] if self.diagnostics else None
        summary = f"{first.span}: {first.code.value} {first.message}" if first else "failed"
        more = len(self.diagnostics) - 1
        super().__init__(summary + (f" (and {more} more)" if more > 0 else ""))


#: characters never shown raw in a diagnostic: C0/C1 controls (terminal escapes, CR), bidi
#: controls and line separators (which make a terminal or a log show other text than there is)
_UNSHOWN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """``text`` with every control, bidi or line-separator character written as an escape
    (``\\x1b``, ``\\u202e``), so text from a file or a request can neither drive a terminal nor
    forge another line of output."""
    return _UNSHOWN.sub(lambda m: repr(m.group())[1:-1], text)


def _line_of(source: str, line: int) -> str:
    lines = source.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""


def render(diag: Diagnostic, source: str | None = None) -> str:
    """Render as ``path:line:col: CODE message``, the source line and a caret under the span."""
    # Everything shown (the path, the message, the source line) may come from a hostile file:
    # controls are escaped here, the one place diagnostics become text.
    sp = diag.span
    where = f"{escape_controls(sp.path)}:{sp.line}:{sp.column}: {diag.code.value}"
    warn = "warning: " if diag.severity is Severity.WARNING else ""
    out = [f"{where} {warn}{escape_controls(diag.message)}"]
    if source is not None:
        text = _line_of(source, sp.line).rstrip("\n")
        if text or sp.line <= len(source.splitlines()):
            gutter = f"{sp.line:>4} | "
            text = text.expandtabs(1)
            # the caret moves by what escaping added before the span, and widens with the span
            before = len(escape_controls(text[: sp.column - 1]))
            width = 1
            if sp.end_line == sp.line and sp.end_column > sp.column:
                width = sp.end_column - sp.column
            width = max(1, min(width, max(1, len(text) - sp.column + 1)))
            width = max(1, len(escape_controls(text[sp.column - 1 : sp.column - 1 + width])))
            out.append(gutter + escape_controls(text))
            out.append(" " * (len(gutter) - 2) + "| " + " " * before + "^" * width)
    for note in diag.notes:
        out.append(f"  = note: {escape_controls(note)}")
    if diag.help:
        out.append(f"  = help: {escape_controls(diag.help)}")
    return "\n".join(out)


def render_all(diags: Iterable[Diagnostic], sources: dict[str, str]) -> str:
    """Render many diagnostics, separated by blank lines."""
    return "\n\n".join(render(d, sources.get(d.span.path)) for d in diags)


def to_json(diags: Iterable[Diagnostic]) -> str:
    """Diagnostics as a JSON document with a schema version."""
    items = [d.to_dict() for d in diags]
    return json.dumps({"schema_version": 1, "diagnostics": items}, indent=2)


def sort_key(diag: Diagnostic) -> tuple[str, int, int, str]:
    """Order diagnostics by file, position, then code (deterministic output)."""
    return (diag.span.path, diag.span.line, diag.span.column, diag.code.value)
