"""Charter positions (1-based, code points) to and from LSP positions (0-based, client code units)."""

from __future__ import annotations

from collections.abc import Callable

from charter.extras import missing_extra

try:
    from lsprotocol import types as lsp
except ImportError as _exc:  # an optional dependency: name the extra to install
    raise missing_extra("lsp", "the language server (charter lsp)", _exc) from _exc

from charter.diagnostics import Diagnostic, Severity, Span
from charter.editing.text import LineIndex

#: code units of a string in the client's position encoding (UTF-16 unless negotiated otherwise)
Units = Callable[[str], int]

_SEVERITY = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
    Severity.INFO: lsp.DiagnosticSeverity.Information,
}


def to_position(lines: LineIndex, line: int, column: int, units: Units) -> lsp.Position:
    """A 1-based code-point position as an LSP position."""
    line = max(1, min(line, lines.lines))
    text = lines.line_text(line)
    column = max(1, min(column, len(text) + 1))
    return lsp.Position(line=line - 1, character=units(text[: column - 1]))


def to_range(lines: LineIndex, span: Span, units: Units) -> lsp.Range:
    """A span as an LSP range (an empty span at least covers nothing, never goes backwards)."""
    start = to_position(lines, span.line, span.column, units)
    end = to_position(lines, span.end_line, span.end_column, units)
    if (end.line, end.character) < (start.line, start.character):
        end = start
    return lsp.Range(start=start, end=end)


def to_offset(lines: LineIndex, position: lsp.Position, units: Units) -> int:
    """An LSP position as a code-point offset, clamped into the text.

    Positions past the end of a line or of the text clamp to that end; a position inside a
    character that takes two UTF-16 units (an emoji) points at that character.
    """
    line = max(0, position.line) + 1
    if line > lines.lines:
        return len(lines.text)
    text = lines.line_text(line)
    want = max(0, position.character)
    count = 0
    for i, ch in enumerate(text):
        if count >= want:
            return lines.offset(line, i + 1)
        count += units(ch)
        if count > want:  # inside a character: point at it
            return lines.offset(line, i + 1)
    return lines.offset(line, len(text) + 1)


def to_diagnostic(diag: Diagnostic, lines: LineIndex, units: Units) -> lsp.Diagnostic:
    """A charter diagnostic as an LSP diagnostic (code, help and notes kept)."""
    message = diag.message
    extra = [f"note: {n}" for n in diag.notes] + ([f"help: {diag.help}"] if diag.help else [])
    if extra:
        message += "\n" + "\n".join(extra)
    return lsp.Diagnostic(
        range=to_range(lines, diag.span, units),
        message=message,
        severity=_SEVERITY[diag.severity],
        code=diag.code.value,
        code_description=None,
        source="charter",
        data={"code": diag.code.value, "name": diag.code.slug, "help": diag.help},
    )
