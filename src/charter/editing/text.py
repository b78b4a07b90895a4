"""Positions in a text: offsets to 1-based line/column (code points) and back, words at a position."""

from __future__ import annotations

import bisect
import re

from charter.diagnostics import Span

#: A name as the language writes it (tools have dots, ids have dashes).
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[-.][A-Za-z0-9_]+)*")
#: A CEL identifier path such as ``args.amount`` (no dashes: CEL has none).
CEL_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*")


class LineIndex:
    """Where each line of a text starts, for offset <-> (line, column) conversions."""

    __slots__ = ("starts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        self.starts.extend(m.end() for m in re.finditer("\n", text))

    @property
    def lines(self) -> int:
        """Number of lines (a text ending in a newline has an empty last line)."""
        return len(self.starts)

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline ('' past the end)."""
        if not 1 <= line <= len(self.starts):
            return ""
        start = self.starts[line - 1]
        end = self.starts[line] - 1 if line < len(self.starts) else len(self.text)
        return self.text[start:end]

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of an offset, clamped into the text."""
        offset = max(0, min(offset, len(self.text)))
        i = bisect.bisect_right(self.starts, offset) - 1
        return i + 1, offset - self.starts[i] + 1

    def offset(self, line: int, column: int) -> int:
        """The offset of a 1-based (line, column), clamped to the line and the text."""
        if line < 1:
            return 0
        if line > len(self.starts):
            return len(self.text)
        start = self.starts[line - 1]
        width = len(self.line_text(line))
        return start + max(0, min(column - 1, width))

    def span(self, path: str, start: int, end: int) -> Span:
        """The span of [start, end) in this text."""
        line, col = self.position(start)
        end_line, end_col = self.position(end)
        return Span(path, line, col, end_line, end_col, start, end)


def word_at(text: str, offset: int, pattern: re.Pattern[str] = WORD) -> tuple[int, int] | None:
    """[start, end) of the word that contains or ends at ``offset``, or None."""
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line_end = len(text) if line_end < 0 else line_end
    for m in pattern.finditer(text, line_start, line_end):
        if m.start() <= offset <= m.end():
            return m.start(), m.end()
    return None


def contains(span: Span, line: int, column: int) -> bool:
    """True when (line, column) lies in the span or touches its end (the cursor after a word)."""
    if (line, column) < (span.line, span.column):
        return False
    return (line, column) <= (span.end_line, span.end_column)
