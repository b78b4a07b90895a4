"""Lint levels from ``[tool.charter]``/``.charter.yaml`` and inline ``# charter: ignore`` suppressions."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from charter.diagnostics import Code, Diagnostic, Severity, Span, warning
from charter.documents import DocumentError, parse_yaml, read_text
from charter.errors import Error

#: title and one-line description of every lint (warning) code; docs/lint.md has a section for each
LINTS: dict[str, tuple[str, str]] = {
    "W501": ("never-fires", "A rule's condition is constantly unmet, so the rule can never fire."),
    "W502": ("permit-shadowed", "An unconditional forbid or halt covers everything a permit allows."),
    "W503": ("budget-never-trips", "A wider budget allows less over the same window: this one never bites."),
    "W504": ("quorum-unreachable", "An approval needs more approvers than its group has members."),
    "W505": ("unused-tool", "A declared tool no rule mentions (it is denied by default)."),
    "W506": ("no-reason", "A rule without a reason: its decisions cannot explain themselves."),
    "W507": ("fail-open", "A rule whose errors are ignored (on error ignore): it fails open."),
    "W508": ("unused-declaration", "A declaration nothing refers to."),
    "W509": ("suppression-without-reason", "A '# charter: ignore' comment without '-- reason'."),
    "W510": ("cel-escape", "'\\b' in a text that is not raw: a backspace, not a regex word boundary."),
    "W511": ("label-as-permission", "A permit on 'after labelled': run labels only grow, from any source."),
    "W512": ("settled-trip-no-effect", "A spend tripwire that does not halt: it trips after the spend."),
}
LEVELS = {
    "off": None,
    "ignore": None,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "error": Severity.ERROR,
}
_IGNORE = re.compile(
    r"#\s*charter:\s*ignore\s+(?P<codes>[WE]\d{3}(?:\s*,\s*[WE]\d{3})*)\s*(?:--\s*(?P<reason>.*))?$"
)


class LintConfigError(Error, ValueError):
    """A lint configuration that does not parse or names an unknown code or level."""


def find_config(start: str | Path) -> tuple[Path, dict[str, str]] | None:
    """The nearest ``.charter.yaml`` or ``pyproject.toml`` with ``[tool.charter]``, walking up."""
    p = Path(start).resolve()
    for d in [p, *p.parents] if p.is_dir() else list(p.parents):
        y = d / ".charter.yaml"
        if y.is_file():
            # read like every document the CLI is given (bounded, no aliases, depth-checked): a
            # hostile repository's config must not hang or crash `charter check` in its CI
            try:
                data = parse_yaml(read_text(y, what="lint configuration"), what="lint configuration") or {}
            except DocumentError as exc:
                raise LintConfigError(f"{y}: {exc}") from None
            return y, _levels(data, str(y))
        t = d / "pyproject.toml"
        if t.is_file():
            try:
                data = tomllib.loads(read_text(t, what="pyproject.toml"))
            except DocumentError as exc:
                raise LintConfigError(f"{t}: {exc}") from None
            except tomllib.TOMLDecodeError as exc:
                raise LintConfigError(f"{t}: not valid TOML: {exc}") from None
            except RecursionError:  # tomllib recurses per nested array or inline table
                raise LintConfigError(f"{t}: nests too deep") from None
            tool = data.get("tool")
            section = tool.get("charter") if isinstance(tool, dict) else None
            if section is not None:
                return t, _levels(section, str(t))
    return None


def _levels(data: Any, where: str) -> dict[str, str]:
    if not isinstance(data, Mapping):
        raise LintConfigError(f"{where}: the charter configuration must be a mapping")
    lint = data.get("lint") or {}
    if not isinstance(lint, Mapping):
        raise LintConfigError(f"{where}: lint must map codes to off, warning or error")
    out: dict[str, str] = {}
    for code, level in lint.items():
        code, lv = str(code).upper(), str(level).lower() if level is not False else "off"
        if code not in LINTS:
            raise LintConfigError(f"{where}: unknown lint code {code!r} (known: {', '.join(LINTS)})")
        if lv not in LEVELS:
            raise LintConfigError(f"{where}: {code}: level must be off, warning or error, not {level!r}")
        out[code] = lv
    return out


def _suppressions(path: str, source: str) -> tuple[dict[int, set[str]], list[Diagnostic]]:
    """Line -> codes suppressed there (a comment covers its own line and the next)."""
    table: dict[int, set[str]] = {}
    problems: list[Diagnostic] = []
    for n, line in enumerate(source.splitlines(), 1):
        m = _IGNORE.search(line)
        if m is None:
            continue
        codes = {c.strip() for c in m.group("codes").split(",")}
        if not (m.group("reason") or "").strip():
            col = line.index("#") + 1
            problems.append(
                warning(
                    Code.W509_SUPPRESSION_WITHOUT_REASON,
                    f"suppression of {', '.join(sorted(codes))} has no reason, so it suppresses nothing",
                    Span(path, n, col, n, len(line) + 1),
                    "write '# charter: ignore CODE -- why this finding is acceptable'",
                )
            )
            continue
        for ln in (n, n + 1):
            table.setdefault(ln, set()).update(codes)
    return table, problems


def apply(
    diags: Sequence[Diagnostic], sources: Mapping[str, str], levels: Mapping[str, str] | None = None
) -> list[Diagnostic]:
    """Diagnostics after suppressions and configured levels (errors are never suppressed)."""
    tables: dict[str, dict[int, set[str]]] = {}
    extra: list[Diagnostic] = []
    for path, text in sources.items():
        tables[path], problems = _suppressions(path, text)
        extra.extend(problems)
    out: list[Diagnostic] = []
    for d in [*diags, *extra]:
        code = d.code.value
        if d.severity is not Severity.ERROR:
            if code in tables.get(d.span.path, {}).get(d.span.line, ()):
                continue
            level = (levels or {}).get(code)
            if level is not None:
                sev = LEVELS[level]
                if sev is None:
                    continue
                d = dataclasses.replace(d, severity=sev)
        out.append(d)
    return out


def configure(
    paths: Iterable[str], diags: Sequence[Diagnostic], sources: Mapping[str, str]
) -> list[Diagnostic]:
    """Apply the configuration found from the first checked path, and inline suppressions."""
    first = next(iter(paths), ".")
    found = find_config(first)
    return apply(diags, sources, found[1] if found else None)
