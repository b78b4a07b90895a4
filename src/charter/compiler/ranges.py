"""Compiler check: every number a store will hold (limits, thresholds, windows) fits every store.

A limit of ``999999999999999999 USD`` is 10**24 micro-units: PostgreSQL's ``bigint`` overflows and
denies every decision, while the in-memory and SQLite stores allow. The ranges below are checked
once, at compile time, on the parsed modules, so a policy either compiles with numbers that every
store represents exactly or does not compile (E402); stores then behave identically.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from charter.diagnostics import Code, Diagnostic, error
from charter.enums import TriggerKind
from charter.state.types import MAX_AMOUNT, MAX_COUNT, MAX_WINDOW_S, MICRO
from charter.syntax import ast

#: Units of a rate limit (a count of actions), as the lowerer reads them.
_COUNT_UNITS = frozenset({"calls", "actions", "requests"})


def _nodes(node: object) -> Iterator[ast.Node]:
    """Every AST node under ``node`` (depth-first, iterative: nesting is already bounded)."""
    stack: list[object] = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, ast.Node):
            yield cur
            stack.extend(getattr(cur, f) for f in type(cur).model_fields if f != "span")
        elif isinstance(cur, tuple | list):
            stack.extend(cur)


def _too_big(what: str, value: Decimal | float, limit: int, unit: str, node: ast.Node) -> Diagnostic:
    shown = f"{value:,}"
    if len(shown) > 40:  # a literal of thousands of digits is not repeated whole
        shown = f"{value:.3e}"
    return error(
        Code.E402_BAD_VALUE,
        f"{what} {shown} {unit} is more than the state stores hold exactly (at most {limit:,} {unit})",
        node.span,
        "every store (memory, sqlite, redis, postgres) must count it the same way; use a smaller value",
    )


def _negative(what: str, node: ast.Node) -> Diagnostic:
    # a negative limit or threshold would deny (or trip on) every action, a typo the author
    # never sees; a rate limit's own check says the same for counts
    return error(Code.E402_BAD_VALUE, f"a {what} cannot be negative", node.span, "write 0 to allow nothing")


def _finer_than_a_micro(value: Decimal, node: ast.Node) -> Diagnostic:
    # stores count money in micro-units: a finer limit would be silently cut (0.0000001 USD -> 0)
    return error(
        Code.E402_BAD_VALUE,
        f"limit {value} is finer than a millionth of a unit, which the state stores count in",
        node.span,
        "use at most 6 decimal places",
    )


def check_ranges(modules: list[ast.Module]) -> list[Diagnostic]:
    """E402 for each limit, threshold or duration outside what every state store can hold."""
    out: list[Diagnostic] = []
    for module in modules:
        for node in _nodes(module):
            if isinstance(node, ast.Duration):
                if not node.seconds <= MAX_WINDOW_S:  # also catches NaN
                    out.append(_too_big("duration", node.seconds, MAX_WINDOW_S, "s", node))
            elif isinstance(node, ast.LimitClause):
                counts = node.unit is None or node.unit.value in _COUNT_UNITS
                limit = MAX_COUNT if counts else MAX_AMOUNT
                if node.amount < 0:
                    out.append(_negative("limit", node))
                elif node.amount > limit:
                    unit = node.unit.value if node.unit is not None else "actions"
                    out.append(_too_big("limit", node.amount, limit, unit, node))
                elif not counts and (node.amount * MICRO) % 1:  # bounded here: exact in Decimal
                    out.append(_finer_than_a_micro(node.amount, node))
            elif isinstance(node, ast.Trigger):
                money = node.kind is TriggerKind.VELOCITY
                limit = MAX_AMOUNT if money else MAX_COUNT
                if node.threshold < 0:
                    out.append(_negative("threshold", node))
                elif node.threshold > limit:
                    unit = node.unit.value if node.unit is not None else ("" if money else "actions")
                    out.append(_too_big("threshold", node.threshold, limit, unit, node))
    return out
