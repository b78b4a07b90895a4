"""Bounds on hostile CEL input: compile-time size/depth limits and the runtime cost budget."""

from __future__ import annotations

from dataclasses import dataclass

from charter.cel.values import CostExceeded


@dataclass(frozen=True, slots=True)
class Limits:
    """Compile-time and run-time bounds for one CEL condition."""

    max_length: int = 4096
    """Maximum length of the condition text, in characters."""
    max_tokens: int = 1200
    """Maximum number of tokens (counted by the lexer before parsing)."""
    max_nesting: int = 32
    """Maximum nesting of brackets ``( [ {`` (the parser recurses once per level)."""
    max_depth: int = 48
    """Maximum nesting depth of the expression tree (&&/|| chains count as one level)."""
    max_list_elements: int = 512
    """Maximum number of elements in one list or map literal."""
    max_comprehension_nesting: int = 2
    """Maximum nesting of macros (all/exists/exists_one/map/filter/transform*/sortBy)."""
    max_string_literal: int = 1024
    """Maximum length of one string or bytes literal."""
    max_regex_length: int = 256
    """Maximum length of a regular expression given to matches()."""
    max_cost: int = 100_000
    """Runtime budget per evaluation, in cost units: each comprehension step costs the size of its
    body (in nodes) plus one; functions whose work grows with their input cost one unit per list
    or map element they visit and one per 64 characters or bytes they read or write. Exceeding it
    ends the evaluation with the error "cost limit exceeded" (the rule fails closed)."""


class Budget:
    """The cost counter of one evaluation (see :attr:`Limits.max_cost`)."""

    __slots__ = ("cost", "max_cost")

    def __init__(self, max_cost: int) -> None:
        self.cost = 0
        self.max_cost = max_cost

    def charge(self, n: int) -> None:
        """Spend ``n`` units; raise CostExceeded past the budget."""
        self.cost += n
        if self.cost > self.max_cost:
            raise CostExceeded("cost limit exceeded")


def text_cost(n: int) -> int:
    """Units for reading or writing ``n`` characters or bytes."""
    return (n >> 6) + 1
