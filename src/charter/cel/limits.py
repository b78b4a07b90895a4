"""Bounds on hostile CEL input: compile-time size/depth limits and the runtime cost budget."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Compile-time and run-time bounds for one CEL condition."""

    max_length: int = 4096
    """Maximum length of the condition text, in characters."""
    max_tokens: int = 1200
    """Maximum number of tokens (checked by a cheap scan before cel-python's parser runs)."""
    max_depth: int = 32
    """Maximum nesting depth of the expression (&&/|| chains count as one level)."""
    max_list_elements: int = 512
    """Maximum number of elements in one list or map literal."""
    max_comprehension_nesting: int = 2
    """Maximum nesting of all/exists/exists_one/map/filter."""
    max_string_literal: int = 1024
    """Maximum length of one string or bytes literal."""
    max_regex_length: int = 256
    """Maximum length of a literal regular expression given to matches()."""
    max_cost: int = 5_000
    """Runtime budget per evaluation: comprehension steps (weighted by body size) plus
    characters handled by string operations. Exceeding it yields CelError("cost limit exceeded")."""
