"""The root of charter's runtime errors: every exception charter raises on purpose derives from Error."""

from __future__ import annotations

__all__ = ["Error"]


class Error(Exception):
    """The root of every error charter raises on purpose (``except charter.Error`` catches them all).

    Subclasses that callers already catch as a builtin (``ValueError``, ``KeyError`` …) also derive
    from that builtin, so existing ``except`` clauses keep working.
    """
