"""Quick fixes: text edits that resolve a diagnostic (did-you-mean, a missing reason, a fail-open
clause, an unused declaration) or suppress a warning with a reason, as docs/lint.md describes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from charter.diagnostics import Code, Diagnostic, Span
from charter.editing.text import LineIndex
from charter.syntax import ast

_DID_YOU_MEAN = re.compile(r"did you mean '([^']+)'\?")


@dataclass(frozen=True)
class Edit:
    """Replace [start, end) (code-point offsets in the file) with ``text``."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Fix:
    """A named set of edits in one file; ``preferred`` marks the fix an editor may apply at once."""

    title: str
    edits: tuple[Edit, ...]
    preferred: bool = False


def fixes(diag: Diagnostic, text: str, module: ast.Module | None) -> list[Fix]:
    """Every fix for one diagnostic in a file whose current text is ``text``."""
    lines = LineIndex(text)
    start = _offset(lines, diag.span)
    end = max(start, lines.offset(diag.span.end_line, diag.span.end_column))
    out: list[Fix] = []
    hint = _DID_YOU_MEAN.search(diag.help or "")
    if hint is not None and diag.code in (
        Code.E201_UNKNOWN_NAME,
        Code.E101_SYNTAX,
        Code.E302_CEL_UNKNOWN_NAME,
    ):
        out.append(Fix(f"Change to '{hint.group(1)}'", (Edit(start, end, hint.group(1)),), True))
    node = _item_at(module, diag.span) if module is not None else None
    if diag.code is Code.W506_NO_REASON and isinstance(node, ast.Rule):
        out.append(Fix("Add a reason", (_add_reason(text, node),), True))
    if diag.code is Code.W507_FAIL_OPEN:
        out.append(Fix("Remove 'on error ignore' (fail closed)", (_remove(text, start, end),), True))
    if diag.code is Code.W501_NEVER_FIRES:
        out.append(Fix("Remove the condition that is never met", (_remove(text, start, end),)))
    if diag.code in (Code.W505_UNUSED_TOOL, Code.W508_UNUSED_DECLARATION) and node is not None:
        out.append(Fix("Remove the unused declaration", (_remove_declaration(text, node, diag.span),)))
    if diag.code is Code.W509_SUPPRESSION_WITHOUT_REASON:
        eol = lines.offset(diag.span.line, len(lines.line_text(diag.span.line)) + 1)
        out.append(
            Fix(
                "Add a reason to the suppression", (Edit(eol, eol, " -- TODO: why this is acceptable"),), True
            )
        )
    if not diag.is_error and diag.code is not Code.W509_SUPPRESSION_WITHOUT_REASON:
        out.append(_suppress(diag, lines))
    return out


def _offset(lines: LineIndex, span: Span) -> int:
    return lines.offset(span.line, span.column)


def _item_at(module: ast.Module, span: Span) -> ast.Item | None:
    """The top-level item whose source contains the span."""
    for item in module.items:
        s = item.span
        if (s.line, s.column) <= (span.line, span.column) and (span.end_line, span.end_column) <= (
            s.end_line,
            s.end_column,
        ):
            return item
    return None


def _add_reason(text: str, rule: ast.Rule) -> Edit:
    """``reason "..."`` before the rule's closing brace, on its own line when the rule spans lines."""
    close = text.rfind("}", rule.span.start, rule.span.end)
    line_start = text.rfind("\n", 0, close) + 1
    clause = 'reason "TODO: say why, in plain language"'
    if text[line_start:close].strip() == "" and rule.span.line != rule.span.end_line:
        indent = _indent_of_clauses(text, rule) or "  "
        return Edit(line_start, line_start, f"{indent}{clause}\n")
    return Edit(close, close, f" {clause} ")


def _indent_of_clauses(text: str, rule: ast.Rule) -> str:
    for clause in rule.clauses:
        start = text.rfind("\n", 0, clause.span.start) + 1
        lead = text[start : clause.span.start]
        if lead.strip() == "":
            return lead
    return ""


def _remove(text: str, start: int, end: int) -> Edit:
    """Delete [start, end), and the whole line when nothing else is on it."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    if text[line_start:start].strip() == "" and text[end:line_end].strip() == "":
        return Edit(line_start, min(len(text), line_end + 1), "")
    return Edit(start, end, "")


def _remove_declaration(text: str, node: ast.Item, name: Span) -> Edit:
    """Delete a declaration, or one name from a ``units``/``roles`` list."""
    if isinstance(node, (ast.Units, ast.Roles)) and len(node.names) > 1:
        names = list(node.names)
        i = next(k for k, n in enumerate(names) if n.span.start == name.start)
        if i + 1 < len(names):
            return Edit(names[i].span.start, names[i + 1].span.start, "")
        return Edit(names[i - 1].span.end, names[i].span.end, "")
    return _remove(text, node.span.start, node.span.end)


def _suppress(diag: Diagnostic, lines: LineIndex) -> Fix:
    """``# charter: ignore CODE -- reason`` on the line before the finding."""
    line = lines.line_text(diag.span.line)
    indent = line[: len(line) - len(line.lstrip())]
    at = lines.offset(diag.span.line, 1)
    comment = f"{indent}# charter: ignore {diag.code.value} -- TODO: why this finding is acceptable\n"
    return Fix(f"Suppress {diag.code.value} here (with a reason)", (Edit(at, at, comment),))


def fixable(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """The diagnostics that have a fix other than suppressing them."""
    fixed = {Code.W501_NEVER_FIRES, Code.W505_UNUSED_TOOL, Code.W506_NO_REASON, Code.W507_FAIL_OPEN,
             Code.W508_UNUSED_DECLARATION, Code.W509_SUPPRESSION_WITHOUT_REASON}  # fmt: skip
    return [d for d in diags if d.code in fixed or _DID_YOU_MEAN.search(d.help or "")]
