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
    max_comprehension_nesting: int = 3
    """Maximum nesting of macros (all/exists/exists_one/map/filter/transform*/sortBy), counted
    once named conditions are written out. Three: "every recipient is covered by a grant whose
    sources include the recipient's" needs it; the work is bounded by ``max_cost`` whatever the
    nesting, this bounds only how much of it one condition can hide."""
    max_string_literal: int = 1024
    """Maximum length of one string or bytes literal."""
    max_regex_length: int = 256
    """Maximum length of a regular expression given to matches()."""
    max_cost: int = 50_000
    """Runtime budget per evaluation, in cost units (one unit is about 0.2 µs of work): each
    comprehension step costs the size of its body (in nodes) plus one; work that grows with the
    input costs one unit per list or map element visited past the first 64 and one per 64
    characters or bytes past the first 4,096 (smaller inputs cost nothing beyond the expression
    itself, whose size is bounded). Exceeding it ends the evaluation with the error "cost limit
    exceeded" (the rule fails closed). An activation may carry a shared budget for a whole
    decision (see :class:`Budget` and ``BUDGET_ATTRIBUTE``)."""


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


#: Texts up to this length and containers up to this size are handled at no cost: the work is
#: bounded by the expression's size, and the fast path (fastpath.py) relies on it.
FREE_TEXT = 4096
FREE_ELEMENTS = 64

#: The attribute of an activation holding a Budget shared by every condition of one decision.
BUDGET_ATTRIBUTE = "cel_budget"
#: The budget of one decision, shared by its conditions (about 20-30 ms of work).
DECISION_COST = 100_000


def text_cost(n: int) -> int:
    """Units for reading or writing ``n`` characters or bytes."""
    return 0 if n <= FREE_TEXT else n >> 6


def elements_cost(n: int) -> int:
    """Units for visiting ``n`` list or map elements."""
    return 0 if n <= FREE_ELEMENTS else n
