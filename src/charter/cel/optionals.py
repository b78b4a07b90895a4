"""cel-go's optional values: optional.of/ofNonZeroValue/none, hasValue, value, orValue, or, and the
optional select and index that ``a.?b``, ``a[?i]`` and field access on an optional use."""

from __future__ import annotations

from typing import Any

from charter.cel.signatures import Function, fn
from charter.cel.stdlib import MISSING, map_get, no_overload
from charter.cel.types import UInt
from charter.cel.values import NONE, Duration, EvalError, Optional, Timestamp


def of(v: Any) -> Optional:
    """``optional.of(v)``."""
    return Optional(v)


def none() -> Optional:
    """``optional.none()``."""
    return NONE


def _is_zero(v: Any) -> bool:
    t = type(v)
    if v is None:
        return True
    if t in (bool, int, UInt, float, str, bytes, list, dict, tuple):
        return not v
    if t is Duration:
        return v.nanos == 0
    if t is Timestamp:
        return v.seconds == 0 and v.nanos == 0
    return False


def of_non_zero(v: Any) -> Optional:
    """``optional.ofNonZeroValue(v)``: none for a zero value (0, '', false, null, [], {} ...)."""
    return NONE if _is_zero(v) else Optional(v)


def _opt(name: str, o: Any, *more: Any) -> Optional:
    if type(o) is not Optional:
        raise no_overload(name, o, *more)
    return o


def has_value(o: Any) -> bool:
    """``opt.hasValue()``."""
    return _opt("hasValue", o).present


def value(o: Any) -> Any:
    """``opt.value()``: the value; an error for optional.none()."""
    opt = _opt("value", o)
    if not opt.present:
        raise EvalError("optional.none() dereference")
    return opt.value


def or_value(o: Any, default: Any) -> Any:
    """``opt.orValue(default)``."""
    opt = _opt("orValue", o, default)
    return opt.value if opt.present else default


def or_(o: Any, other: Any) -> Any:
    """``opt.or(other)``: this optional if it has a value, else ``other``."""
    opt = _opt("or", o, other)
    if opt.present:
        return opt
    return _opt("or", other)


def select(operand: Any, field: str) -> Optional:
    """``operand.?field`` (and ``.field`` on an optional): an optional of the map entry."""
    if type(operand) is Optional:
        if not operand.present:
            return NONE
        operand = operand.value
    if type(operand) is dict:
        found = operand.get(field, MISSING)
        return NONE if found is MISSING else Optional(found)
    raise EvalError(f"no such key: '{field}' (cannot select a field of {type(operand).__name__})")


def index(operand: Any, key: Any) -> Optional:
    """``operand[?key]`` (and ``[key]`` on an optional): an optional of the element or entry."""
    if type(operand) is Optional:
        if not operand.present:
            return NONE
        operand = operand.value
    t = type(operand)
    if t is dict:
        found = map_get(operand, key)
        return NONE if found is MISSING else Optional(found)
    if t is list or t is tuple:
        tk = type(key)
        if (tk is float and key.is_integer()) or tk is UInt:
            key = int(key)
        elif tk is not int:
            raise no_overload("_[?_]", operand, key)
        return Optional(operand[key]) if 0 <= key < len(operand) else NONE
    raise no_overload("_[?_]", operand, key)


FUNCTIONS: list[Function] = [
    fn("optional.of", of, "(A) -> optional(A)", doc="an optional holding a value",
       examples=["optional.of(1).hasValue()"]),
    fn("optional.ofNonZeroValue", of_non_zero, "(A) -> optional(A)",
       doc="an optional holding a value, empty for a zero value ('', 0, [], {} ...)",
       examples=["!optional.ofNonZeroValue('').hasValue()"]),
    fn("optional.none", none, "() -> optional(dyn)", doc="the empty optional",
       examples=["optional.none().orValue(5) == 5"]),
    fn("hasValue", has_value, "(optional(A)) -> bool", member=True, doc="whether the optional holds a value",
       examples=["{'a': 1}.?a.hasValue()"]),
    fn("value", value, "(optional(A)) -> A", member=True, doc="the value (an error when empty)",
       examples=["{'a': 1}.?a.value() == 1"]),
    fn("orValue", or_value, "(optional(A), A) -> A", member=True, doc="the value, or a default",
       examples=["{'a': 1}.?b.orValue(0) == 0"]),
    fn("or", or_, "(optional(A), optional(A)) -> optional(A)", member=True,
       doc="this optional if it holds a value, else another",
       examples=["{'a': 1}.?b.or(optional.of(2)).value() == 2"]),
]  # fmt: skip
