"""Golden files: formatter output, AST dumps and rendered diagnostics (UPDATE_GOLDEN=1 rewrites)."""

from __future__ import annotations

import enum
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from charter.api import check
from charter.diagnostics import render_all
from charter.syntax import ast, parse_text
from charter.syntax.printer import format_text

GOLDEN = Path(__file__).parent / "golden"
ERRORS = GOLDEN / "errors"
WARNINGS = GOLDEN / "warnings"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def dump(value: Any, indent: int = 0) -> str:
    """A stable, indented text dump of an AST value (spans left out)."""
    pad = "  " * indent
    if isinstance(value, ast.Module):
        lines = ["Module("]
        lines += ["  items=["] + [f"    {dump(i, 2)}," for i in value.items] + ["  ],"]
        lines += ["  comments=["] + [f"    {c.text!r}," for c in value.comments] + ["  ],"]
        return "\n".join([*lines, ")"])
    if isinstance(value, ast.Name):
        return f"Name({value.value!r})"
    if isinstance(value, ast.Duration):
        return f"Duration({value.text!r}, {value.seconds!r})"
    if isinstance(value, ast.Node):
        fields = [f for f in type(value).model_fields if f != "span" and not f.endswith("_span")]
        inner = [f"{pad}  {f}={dump(getattr(value, f), indent + 1)}," for f in fields]
        return f"{type(value).__name__}(\n" + "\n".join(inner) + f"\n{pad})"
    if isinstance(value, tuple):
        if not value:
            return "[]"
        inner = [f"{pad}  {dump(v, indent + 1)}," for v in value]
        return "[\n" + "\n".join(inner) + f"\n{pad}]"
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, Decimal):
        return f"Decimal('{value}')"
    return repr(value)


def _compare(path: Path, actual: str) -> None:
    if UPDATE or not path.exists():
        path.write_text(actual, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"{path.name} was missing and has been written; check it in")
        return
    assert actual == path.read_text(encoding="utf-8"), f"{path.name} differs (UPDATE_GOLDEN=1)"


@pytest.mark.parametrize("src", sorted(GOLDEN.glob("*.charter")), ids=lambda p: p.stem)
def test_format_and_ast_golden(src: Path) -> None:
    text = src.read_text(encoding="utf-8")
    out = format_text(text, src.name)
    assert out is not None
    _compare(src.with_suffix(".fmt"), out)
    parsed = parse_text(text, src.name)
    assert parsed.module is not None
    _compare(src.with_suffix(".ast.txt"), dump(parsed.module) + "\n")
    again = parse_text(out, src.name).module
    assert again == parsed.module
    assert format_text(out, src.name) == out


@pytest.mark.parametrize("src", sorted(ERRORS.glob("*.charter")), ids=lambda p: p.stem)
def test_diagnostics_golden(src: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ERRORS)
    result = check([src.name])
    rendered = render_all(result.diagnostics, result.sources)
    _compare(src.with_suffix(".diag.txt"), rendered + "\n")
    assert result.errors, "every error golden has at least one error"


@pytest.mark.parametrize("src", sorted(WARNINGS.glob("*.charter")), ids=lambda p: p.stem)
def test_warnings_golden(src: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(WARNINGS)
    result = check([src.name])
    rendered = render_all(result.diagnostics, result.sources)
    _compare(src.with_suffix(".diag.txt"), rendered + "\n")
    assert not result.errors and result.warnings, "a warning golden compiles, with warnings"
