"""``labels(x)`` and ``sources(x)``: the provenance of a value, answered by the data its activation carries.

The engine puts an object with ``labels(value) -> list[str]`` and ``sources(value) -> list | None``
under :data:`PROVENANCE` in the activation (a key no condition can name); without one, or for a
value it does not know (a value computed in the condition), ``labels`` is ``[]`` and ``sources``
is one ``unknown`` source, so a condition needs positive evidence (closed by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from charter.cel.types import CelType
from charter.cel.values import EvalError

__all__ = ["PROVENANCE", "SOURCE_TYPE", "UNKNOWN_SOURCE", "ProvenanceData", "labels_of", "sources_of"]

#: The activation key of the provenance data (not an identifier, so conditions cannot read it).
PROVENANCE = "@provenance"


#: The type of one source (``kind``, ``call``, ``tool``, ``field``: string; ``labels``, ``inputs``:
#: list(string)), for condition parameters written ``s: source``.
SOURCE_TYPE = CelType.MAP(CelType.STRING, CelType.DYN)


def _unknown() -> dict[str, Any]:
    return {"kind": "unknown", "call": "", "tool": "", "field": "", "labels": ["unknown"], "inputs": []}


#: The one source of a value with no provenance (read-only by convention: callers get copies).
UNKNOWN_SOURCE: Mapping[str, Any] = _unknown()


class ProvenanceData(Protocol):
    """What the engine supplies: provenance looked up by the value itself."""

    def labels(self, value: Any) -> list[str]:
        """The value's labels, sorted; [] when it has none."""

    def sources(self, value: Any) -> list[dict[str, Any]] | None:
        """The value's sources; None when it has none."""


def _data(act: Mapping[str, Any]) -> ProvenanceData | None:
    try:
        return act.get(PROVENANCE)
    except Exception:  # an activation that cannot answer has no provenance: closed
        return None


def labels_of(act: Mapping[str, Any], value: Any) -> list[str]:
    """``labels(value)`` in an activation."""
    data = _data(act)
    return data.labels(value) if data is not None else []


def sources_of(act: Mapping[str, Any], value: Any) -> list[dict[str, Any]]:
    """``sources(value)`` in an activation."""
    data = _data(act)
    found = data.sources(value) if data is not None else None
    return found if found is not None else [_unknown()]


def placeholder(value: Any) -> Any:  # replaced by the evaluator, which passes the activation
    """Never called: the evaluator compiles labels() and sources() with the activation."""
    raise EvalError("labels() and sources() are compiled by the evaluator")
