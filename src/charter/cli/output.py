"""Shared CLI output helpers: colour decisions, JSON printing, diagnostic rendering."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from charter.diagnostics import Diagnostic, Severity, escape_controls, render


def use_color(ctx: click.Context | None) -> bool:
    """Colour when asked, or on a terminal without NO_COLOR."""
    mode = "auto"
    if ctx is not None and ctx.find_root().obj:
        mode = ctx.find_root().obj.get("color", "auto")
    if mode == "always":
        return True
    if mode == "never" or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def echo_json(data: Any) -> None:
    """Print one JSON document."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def style_diag(d: Diagnostic, source: str | None, color: bool) -> str:
    """A rendered diagnostic, coloured by severity when asked."""
    text = render(d, source)
    if not color:
        return text
    head, _, rest = text.partition("\n")
    fg = "red" if d.severity is Severity.ERROR else "yellow"
    return click.style(head, fg=fg, bold=True) + ("\n" + rest if rest else "")


def github_data(text: str) -> str:
    """A workflow command's message, escaped as GitHub Actions reads it: one line, no controls.
    Every ``::level`` line charter prints goes through here."""
    return escape_controls(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _gh_property(text: str) -> str:
    """A workflow command's property value: ',' and ':' too, so a file named
    ``a,line=9,title=x.charter`` cannot set another property or end the properties."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(d: Diagnostic) -> str:
    """A GitHub Actions workflow command for one diagnostic."""
    level = "error" if d.severity is Severity.ERROR else "warning"
    msg = github_data(d.message + (f" ({d.help})" if d.help else ""))
    sp = d.span
    return (
        f"::{level} file={_gh_property(sp.path)},line={sp.line},col={sp.column},endLine={sp.end_line},"
        f"endColumn={sp.end_column},title={d.code.value} {d.code.slug}::{msg}"
    )
