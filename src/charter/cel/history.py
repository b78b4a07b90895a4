"""History detail as CEL values: bounded kept values, cut values that cannot be read, typed conversion.

Run history keeps each argument and declared result field of an earlier call up to
``VALUE_LIMIT`` bytes of JSON per value and ``CALL_LIMIT`` per call; a longer value is kept as
its SHA-256 only and reads as a :class:`CutValue`, which every CEL operation on it turns into
an evaluation error (the rule fails closed, never a silent mismatch). docs/semantics.md,
"History with conditions".
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from charter.cel.types import CelType

__all__ = [
    "CALL_LIMIT",
    "DETAIL_CALLS",
    "VALUE_LIMIT",
    "CutValue",
    "Unreadable",
    "convert",
    "keep_values",
    "restore",
]

#: bytes of JSON one kept value may take
VALUE_LIMIT = 1024
#: bytes of JSON the kept values of one call may take together (arguments and result each)
CALL_LIMIT = 8192
#: calls of a run kept in detail (older ones keep only their marks and labels)
DETAIL_CALLS = 512

#: integers whose JSON is at most 20 characters lie strictly between these
_INT_LO, _INT_HI = -(10**19), 10**19

_encode = json.JSONEncoder(separators=(",", ":"), sort_keys=True, allow_nan=False, ensure_ascii=False).encode


class CutValue:
    """A history value longer than the limit: only its SHA-256 was kept. Reading it in a condition
    is an evaluation error (``cel_error``), so a rule that compares with it fails closed."""

    __slots__ = ("digest", "path")

    def __init__(self, path: str, digest: str) -> None:
        self.path = path
        self.digest = digest

    @property
    def cel_error(self) -> str:
        """The message of the evaluation error reading this value gives."""
        return (
            f"history: {self.path} was longer than {VALUE_LIMIT} bytes (or its call's {CALL_LIMIT}) "
            f"and was kept as its SHA-256 {self.digest[:12]}..., so it cannot be compared"
        )

    def __repr__(self) -> str:
        return f"CutValue({self.path!r}, {self.digest[:12]!r})"


class Unreadable:
    """A history that cannot be read (no run, a store fault, entries past the detail window):
    every CEL operation on it is an evaluation error, so the rule fails closed."""

    __slots__ = ("cel_error",)

    def __init__(self, message: str) -> None:
        self.cel_error = message

    def __repr__(self) -> str:
        return f"Unreadable({self.cel_error!r})"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _list_bound(items: list[Any]) -> int:
    """At least the JSON size of a list of leaves (texts, booleans, null, 64-bit-ish integers,
    finite doubles), known without encoding it: the brackets, a comma per element and each
    leaf's bound as :func:`keep_values` takes it; past ``VALUE_LIMIT``, or for any other element,
    ``VALUE_LIMIT + 1`` (the list is encoded to learn its size). Recipients, attachments and
    participants are such lists, often empty."""
    if len(items) > VALUE_LIMIT // 2:
        return VALUE_LIMIT + 1
    size = 2
    for x in items:
        c = x.__class__
        if c is str:
            size += 6 * len(x) + 3
        elif c is bool or x is None:
            size += 6
        elif c is int and _INT_LO < x < _INT_HI:
            size += 21
        elif c is float and x - x == 0.0:
            size += 33
        else:
            return VALUE_LIMIT + 1
        if size > VALUE_LIMIT:
            return VALUE_LIMIT + 1
    return size


def keep_values(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The values history keeps whole, and the SHA-256 of those it cuts (by name).

    A value is cut when its JSON is longer than ``VALUE_LIMIT`` or would take the call past
    ``CALL_LIMIT``; a value JSON cannot hold (NaN, infinity, a foreign object) is cut too, with
    the digest of its ``repr``.
    """
    # first, whether anything can be cut at all: a leaf's JSON is never longer than a bound
    # known without encoding it (a text of n characters: at most 6n + 2 bytes; a list of
    # leaves: see _list_bound), so a call whose values fit by their bounds keeps every value,
    # and none is encoded
    total = 0
    for value in values.values():
        c = value.__class__
        if c is str:
            size = 6 * len(value) + 2
        elif c is bool or value is None:
            size = 5
        elif c is int and _INT_LO < value < _INT_HI:
            size = 20
        elif c is float and value - value == 0.0:  # (not NaN or an infinity: those are cut)
            size = 32
        elif c is list:
            size = _list_bound(value)
        else:
            size = VALUE_LIMIT + 1
        if size > VALUE_LIMIT:  # a container, a long text: its exact size
            try:
                size = len(_encode(value).encode("utf-8", "surrogatepass"))
            except (TypeError, ValueError, RecursionError):
                break
            if size > VALUE_LIMIT:
                break
        total += size
        if total > CALL_LIMIT:
            break
    else:
        return dict(values), {}
    kept: dict[str, Any] = {}
    cut: dict[str, str] = {}
    used = 0
    for name, value in values.items():
        try:
            text = _encode(value)
        except (TypeError, ValueError, RecursionError):
            cut[name] = _digest(repr(value)[:100_000])
            continue
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > VALUE_LIMIT or used + size > CALL_LIMIT:
            cut[name] = _digest(text)
            continue
        used += size
        kept[name] = value
    return kept, cut


def restore(kept: Mapping[str, Any], cut: Mapping[str, str], where: str) -> dict[str, Any]:
    """Kept values as a condition reads them: cut ones as :class:`CutValue` (``kept`` itself when
    none was cut: conditions never change what they read)."""
    if not cut:
        return kept  # type: ignore[return-value]
    out = dict(kept)
    for name, digest in cut.items():
        out[name] = CutValue(f"{where}.{name}", str(digest))
    return out


def convert(value: Any, typ: CelType) -> Any:
    """``value`` as the declared type ``typ`` (as arguments are converted: an integral double to
    int, an int to double); raises ValueError naming what is wrong. Non-finite numbers are
    refused everywhere (they have no JSON form and compare surprisingly)."""
    kind = typ.kind
    if kind == "string":
        if isinstance(value, str):
            return value
    elif kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
    elif kind == "double":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
            raise ValueError(f"{value} is not a finite number")
    elif kind == "list":
        if isinstance(value, (list, tuple)):
            elem = typ.elem or CelType.DYN
            return [convert(x, elem) for x in value]
    elif kind == "map":
        if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
            val = typ.val or CelType.DYN
            return {k: convert(x, val) for k, x in value.items()}
    elif kind == "dyn":
        return _plain(value)
    else:
        raise ValueError(f"history keeps no {typ} values")
    raise ValueError(f"expected {typ}, got {type(value).__name__}")


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON value checked: finite numbers, string keys, bounded nesting."""
    if depth > 32:
        raise ValueError("nested deeper than 32 levels")
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise ValueError(f"{value} is not a finite number")
    if isinstance(value, (list, tuple)):
        return [_plain(x, depth + 1) for x in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _plain(x, depth + 1) for k, x in value.items()}
    raise ValueError(f"{type(value).__name__} is not a JSON value")
