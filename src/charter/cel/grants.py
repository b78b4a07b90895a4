"""``granted("KIND")``: whether a grant of the request's run covers it, from data in its activation.

The engine puts an object with ``granted(kind, activation) -> bool`` under :data:`GRANTS` in the
activation (a key no condition can name); without one (no run, no grants, an unknown run) the
answer is ``false``: a missing grant never covers anything (closed by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from charter.cel.values import EvalError

__all__ = ["GRANTS", "GrantData", "granted_of", "placeholder"]

#: The activation key of the run's grants (not an identifier, so conditions cannot read it).
GRANTS = "@grants"


class GrantData(Protocol):
    """What the engine supplies: the run's grant instances, asked by kind."""

    def granted(self, kind: str, activation: Mapping[str, Any]) -> bool:
        """Whether some instance of ``kind`` covers the request and has uses left."""


def granted_of(act: Mapping[str, Any], kind: Any) -> bool:
    """``granted(kind)`` in an activation."""
    if type(kind) is not str:
        raise EvalError("granted() takes the name of a grant kind")
    try:
        data = act.get(GRANTS)
    except Exception:  # an activation that cannot answer has no grants: closed
        return False
    return bool(data.granted(kind, act)) if data is not None else False


def placeholder(kind: Any) -> Any:  # replaced by the evaluator, which passes the activation
    """Never called: the evaluator compiles granted() with the activation."""
    raise EvalError("granted() is compiled by the evaluator")
