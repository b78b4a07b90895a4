"""Escape-by-default HTML: every value put into a template is escaped unless it is already Html.

Agent-supplied text (arguments, tool names, notes, reasons) is hostile; templates are literals in this
package and values only ever enter through :func:`t`, :func:`esc` or :func:`join`.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable
from typing import Any


class Html(str):
    """Markup that is already safe to emit (made only by this module's functions)."""

    __slots__ = ()


def esc(value: Any) -> Html:
    """``value`` as safe text (quotes escaped too, so it may go in a quoted attribute)."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def t(template: str, /, **values: Any) -> Html:
    """Fill a literal ``str.format`` template; every value is escaped unless it is Html."""
    for k, v in values.items():  # one pass, plain str results: this runs for every table cell
        if type(v) is int:  # nothing to escape in a number (bool is not int here: type() is exact)
            values[k] = str(v)
        elif not isinstance(v, Html):
            values[k] = _escape("" if v is None else str(v))
    return Html(template.format(**values))


_escape = html.escape


def join(parts: Iterable[Any], sep: str = "") -> Html:
    """Concatenate parts, escaping the ones that are not Html."""
    return Html(sep.join(esc(p) for p in parts))


def when(at: Any) -> str:
    """'2026-11-22 10:02 UTC' (or '-')."""
    try:
        return dt.datetime.fromtimestamp(float(at), dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError, OverflowError):
        return "-"


def iso(at: Any) -> str:
    """The machine-readable form for <time datetime=...>."""
    try:
        return dt.datetime.fromtimestamp(float(at), dt.UTC).isoformat(timespec="seconds")
    except (TypeError, ValueError, OverflowError):
        return ""


def ago(at: Any, now: float) -> str:
    """'3 min ago', 'in 2 h' — a relative time for lists."""
    try:
        d = float(at) - now
    except (TypeError, ValueError):
        return "-"
    s = abs(d)
    text = (
        f"{int(s)} s"
        if s < 60
        else f"{int(s // 60)} min"
        if s < 3600
        else f"{s / 3600:.1f} h"
        if s < 86400
        else f"{s / 86400:.1f} d"
    )
    return f"in {text}" if d > 0 else f"{text} ago"


def num(x: Any) -> str:
    """12,500 or 0.25 (how explanations write amounts); '?' when missing."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return "?"
    return f"{int(f):,}" if f == int(f) else f"{f:,.2f}"


def duration(seconds: Any) -> str:
    """'30 min', '4 h', '1 d'."""
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "-"
    if s % 86400 == 0 and s >= 86400:
        return f"{s / 86400:g} d"
    if s % 3600 == 0 and s >= 3600:
        return f"{s / 3600:g} h"
    if s >= 60:
        return f"{s / 60:g} min"
    return f"{s:g} s"
