"""The fast path: exact-when-guarded Python generated from the AST, falling back to the slow path."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from charter.cel.syntax import Node


def build_fast(
    node: Node, slow: Callable[[Mapping[str, Any]], Any]
) -> Callable[[Mapping[str, Any]], Any] | None:
    return None
