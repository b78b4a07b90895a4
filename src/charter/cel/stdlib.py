"""CEL's standard definitions (langdef "Standard Definitions"): equality, ordering, arithmetic, conversions.

Every function takes CEL values and returns one, or raises :class:`EvalError`. Equality is
heterogeneous (langdef "Equality": numbers compare by value across int, uint and double; values of
other different types are unequal), ordering crosses numeric types, integer arithmetic is checked
for overflow, doubles follow IEEE 754.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Any

from charter.cel.limits import FREE_ELEMENTS, Budget
from charter.cel.types import UInt
from charter.cel.values import (
    INT_MAX,
    INT_MIN,
    UINT_MAX,
    Duration,
    EvalError,
    Timestamp,
    TypeValue,
    kind_name,
)

NUMBERS = frozenset({int, UInt, float})
_ORDERED = frozenset({int, UInt, float, str, bytes, bool, Timestamp, Duration})
_NS = 1_000_000_000
DUR_MIN_NS = INT_MIN
DUR_MAX_NS = INT_MAX


def no_overload(name: str, *args: Any) -> EvalError:
    """The error for a function applied to values it has no overload for."""
    kinds = ", ".join(kind_name(a) for a in args)
    return EvalError(f"no such overload: {name}({kinds})")


# -- equality and ordering ----------------------------------------------------------------------


def _numeric(a: Any, b: Any) -> tuple[Any, Any]:
    """Numbers of different types as compared by CEL: an int or uint against a double is
    compared as a double (cel-go's semantics), int against uint exactly."""
    if type(a) is float:
        return a, float(b)
    if type(b) is float:
        return float(a), b
    return a, b


def equals(a: Any, b: Any, budget: Budget | None = None) -> bool:
    """CEL ``==``: heterogeneous equality (never an error); lists and maps charge ``budget``."""
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta is list or ta is tuple:
            return _list_eq(a, b, budget)
        if ta is dict:
            return _map_eq(a, b, budget)
        return bool(a == b)
    if ta in NUMBERS and tb in NUMBERS:
        x, y = _numeric(a, b)
        return bool(x == y)
    if (ta is list or ta is tuple) and (tb is list or tb is tuple):
        return _list_eq(a, b, budget)
    return False


def _list_eq(a: Any, b: Any, budget: Budget | None) -> bool:
    if len(a) != len(b):
        return False
    if budget is not None:
        budget.charge(len(a))
    return all(equals(x, y, budget) for x, y in zip(a, b, strict=True))


def _map_eq(a: dict[Any, Any], b: dict[Any, Any], budget: Budget | None) -> bool:
    if len(a) != len(b):
        return False
    if budget is not None:
        budget.charge(len(a))
    for k, v in a.items():
        found = map_get(b, k)
        if found is _MISSING or not equals(v, found, budget):
            return False
    return True


_MISSING: Any = object()


def map_get(m: dict[Any, Any], key: Any) -> Any:
    """The value of ``key`` in ``m`` under CEL key equality, or the ``_MISSING`` marker."""
    tk = type(key)
    if tk is str:
        v = m.get(key, _MISSING)
        return v
    if tk is float:
        if not key.is_integer():
            return _MISSING
    elif tk is not int and tk is not UInt and tk is not bool:
        return _MISSING
    v = m.get(key, _MISSING)
    if v is _MISSING:
        return v
    # Python's 1 == True: a bool key matches only a bool, a number only a number
    want_bool = tk is bool
    for k in m:
        if (type(k) is bool) == want_bool and k == key:
            return m[k]
    return _MISSING


MISSING = _MISSING


def check_key(k: Any) -> Any:
    """A map key as it may be stored: bool, int, uint or string (langdef "Maps")."""
    tk = type(k)
    if tk is str or tk is int or tk is bool or tk is UInt:
        return k
    raise EvalError(f"unsupported key type: {kind_name(k)}")


def _ordering(name: str, op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """A CEL ordering operator: values of one orderable type, or numbers across types."""

    def compare(a: Any, b: Any) -> bool:
        ta = type(a)
        tb = type(b)
        if ta is tb and ta in _ORDERED:
            return bool(op(a, b))
        if ta in NUMBERS and tb in NUMBERS:
            x, y = _numeric(a, b)
            return bool(op(x, y))
        raise no_overload(name, a, b)

    compare.__name__ = compare.__qualname__ = name.strip("_")
    compare.__doc__ = f"CEL ``{name.strip('_')}`` (numbers compare across types; NaN compares false)."
    return compare


less = _ordering("_<_", operator.lt)
less_eq = _ordering("_<=_", operator.le)
greater = _ordering("_>_", operator.gt)
greater_eq = _ordering("_>=_", operator.ge)


def contains_elem(container: Any, x: Any, budget: Budget | None = None) -> bool:
    """CEL ``x in container`` for a list (heterogeneous equality) or a map (its keys)."""
    tc = type(container)
    if tc is list or tc is tuple:
        if budget is not None and len(container) > FREE_ELEMENTS:
            budget.charge(len(container))
        tx = type(x)
        if tx is str:
            return x in container  # a str equals only a str
        return any(equals(e, x, budget) for e in container)
    if tc is dict:
        if type(x) not in _KEY_TYPES:
            raise no_overload("@in", x, container)
        return map_get(container, x) is not _MISSING
    raise no_overload("@in", x, container)


#: What may be looked up in a map: its key types, and doubles (equal to an int or uint key).
_KEY_TYPES = frozenset({str, int, UInt, bool, float})


# -- arithmetic -----------------------------------------------------------------------------------


def _int(v: int) -> int:
    if INT_MIN <= v <= INT_MAX:
        return v
    raise EvalError("integer overflow")


def _uint(v: int) -> UInt:
    if 0 <= v <= UINT_MAX:
        return UInt(v)
    raise EvalError("unsigned integer overflow")


def duration_of(nanos: int) -> Duration:
    """A duration, or a range error past int64 nanoseconds (cel-go's time.Duration)."""
    if DUR_MIN_NS <= nanos <= DUR_MAX_NS:
        return Duration(nanos)
    raise EvalError("duration out of range")


def add(a: Any, b: Any) -> Any:
    """CEL ``+``."""
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta is int:
            return _int(a + b)
        if ta is float or ta is str or ta is bytes:
            return a + b
        if ta is list:
            return a + b
        if ta is UInt:
            return _uint(int(a) + int(b))
        if ta is Duration:
            return duration_of(a.nanos + b.nanos)
    elif ta is Timestamp and tb is Duration:
        return Timestamp(a.seconds, a.nanos + b.nanos)
    elif ta is Duration and tb is Timestamp:
        return Timestamp(b.seconds, b.nanos + a.nanos)
    elif (ta is list or ta is tuple) and (tb is list or tb is tuple):
        return [*a, *b]
    raise no_overload("_+_", a, b)


def sub(a: Any, b: Any) -> Any:
    """CEL ``-``."""
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta is int:
            return _int(a - b)
        if ta is float:
            return a - b
        if ta is UInt:
            return _uint(int(a) - int(b))
        if ta is Duration:
            return duration_of(a.nanos - b.nanos)
        if ta is Timestamp:
            return duration_of(a.total_nanos() - b.total_nanos())
    elif ta is Timestamp and tb is Duration:
        return Timestamp(a.seconds, a.nanos - b.nanos)
    raise no_overload("_-_", a, b)


def mul(a: Any, b: Any) -> Any:
    """CEL ``*``."""
    ta = type(a)
    if ta is type(b):
        if ta is int:
            return _int(a * b)
        if ta is float:
            return a * b
        if ta is UInt:
            return _uint(int(a) * int(b))
    raise no_overload("_*_", a, b)


def div(a: Any, b: Any) -> Any:
    """CEL ``/``: integer division truncates toward zero; double division is IEEE 754."""
    ta = type(a)
    if ta is type(b):
        if ta is int:
            if b == 0:
                raise EvalError("divide by zero")
            q = abs(a) // abs(b)
            return _int(q if (a < 0) == (b < 0) else -q)
        if ta is float:
            if b == 0.0:
                if a == 0.0 or a != a:
                    return math.nan
                return math.copysign(math.inf, a) * math.copysign(1.0, b)
            return a / b
        if ta is UInt:
            if b == 0:
                raise EvalError("divide by zero")
            return UInt(int(a) // int(b))
    raise no_overload("_/_", a, b)


def mod(a: Any, b: Any) -> Any:
    """CEL ``%``: the remainder takes the sign of the dividend (truncated division)."""
    ta = type(a)
    if ta is type(b):
        if ta is int:
            if b == 0:
                raise EvalError("modulus by zero")
            r = abs(a) % abs(b)
            return -r if a < 0 else r
        if ta is UInt:
            if b == 0:
                raise EvalError("modulus by zero")
            return UInt(int(a) % int(b))
    raise no_overload("_%_", a, b)


def neg(a: Any) -> Any:
    """CEL unary ``-``."""
    ta = type(a)
    if ta is int:
        return _int(-a)
    if ta is float:
        return -a
    if ta is Duration:
        return duration_of(-a.nanos)
    raise no_overload("-_", a)


def logical_not(a: Any) -> bool:
    """CEL ``!``."""
    if type(a) is bool:
        return not a
    raise no_overload("!_", a)


# -- conversions ----------------------------------------------------------------------------------

_INT_TEXT = re.compile(r"[+-]?\d+\Z")
_FLOAT_TEXT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)\Z", re.I)
_BOOL_TEXT = {"1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
              "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False}  # fmt: skip


def to_int(v: Any) -> int:
    """``int(v)``."""
    t = type(v)
    if t is int:
        return v
    if t is UInt:
        return _range_int(int(v))
    if t is float:
        if not (-9223372036854775808.0 < v < 9223372036854775808.0):
            raise EvalError("range error converting double to int")
        return int(v)
    if t is str:
        if not _INT_TEXT.match(v):
            raise EvalError(f"cannot convert '{v}' to int")
        return _range_int(int(v))
    if t is Timestamp:
        return v.seconds
    if t is bool:
        return int(v)
    raise no_overload("int", v)


def _range_int(v: int) -> int:
    if INT_MIN <= v <= INT_MAX:
        return v
    raise EvalError("range error converting to int")


def to_uint(v: Any) -> UInt:
    """``uint(v)``."""
    t = type(v)
    if t is UInt:
        return v
    if t is int:
        if v < 0:
            raise EvalError("range error converting int to uint")
        return UInt(v)
    if t is float:
        if not (-1.0 < v < 18446744073709551616.0):
            raise EvalError("range error converting double to uint")
        return UInt(int(v))
    if t is str:
        if not _INT_TEXT.match(v) or v.startswith("-"):
            raise EvalError(f"cannot convert '{v}' to uint")
        n = int(v)
        if n > UINT_MAX:
            raise EvalError("range error converting to uint")
        return UInt(n)
    raise no_overload("uint", v)


def to_double(v: Any) -> float:
    """``double(v)``."""
    t = type(v)
    if t is float:
        return v
    if t is int or t is UInt:
        return float(v)
    if t is str:
        if not _FLOAT_TEXT.match(v):
            raise EvalError(f"cannot convert '{v}' to double")
        return float(v)
    raise no_overload("double", v)


def format_double(f: float) -> str:
    """A double as text: the shortest digits that read back exactly, in Go's ``%g`` style
    (with an exponent from 1e+06 and below 1e-04)."""
    if f != f:
        return "NaN"
    if f in (math.inf, -math.inf):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0.0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    r = repr(abs(f))
    if "e" in r:
        mant, ex = r.split("e")
        exp10 = int(ex)
        intpart, _, frac = mant.partition(".")
        digits = (intpart + frac).rstrip("0") or "0"
        point = len(intpart) + exp10
    else:
        intpart, _, frac = r.partition(".")
        frac = frac.rstrip("0")
        raw = (intpart + frac).lstrip("0")
        point = len(intpart) if intpart != "0" else -(len(frac) - len(frac.lstrip("0")))
        digits = raw.rstrip("0") or "0"
    exp = point - 1
    sign = "-" if f < 0 else ""
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def to_string(v: Any) -> str:
    """``string(v)``."""
    t = type(v)
    if t is str:
        return v
    if t is int or t is UInt:
        return str(int(v))
    if t is float:
        return format_double(v)
    if t is bool:
        return "true" if v else "false"
    if t is bytes:
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            raise EvalError("invalid UTF-8 in bytes converted to string") from None
    if t is Timestamp or t is Duration:
        return str(v)
    if t is TypeValue:
        return v.name
    text = getattr(v, "cel_text", None)
    if text is not None:
        return str(text())
    raise no_overload("string", v)


def to_bytes(v: Any) -> bytes:
    """``bytes(v)``."""
    t = type(v)
    if t is bytes:
        return v
    if t is str:
        return v.encode("utf-8", "surrogatepass")
    raise no_overload("bytes", v)


def to_bool(v: Any) -> bool:
    """``bool(v)``."""
    t = type(v)
    if t is bool:
        return v
    if t is str:
        found = _BOOL_TEXT.get(v)
        if found is None:
            raise EvalError(f"cannot convert '{v}' to bool")
        return found
    raise no_overload("bool", v)


def to_dyn(v: Any) -> Any:
    """``dyn(v)``: the value itself."""
    return v


def size(v: Any) -> int:
    """``size(v)`` of a string (code points), bytes, list or map."""
    t = type(v)
    if t is str or t is bytes or t is list or t is dict or t is tuple:
        return len(v)
    raise no_overload("size", v)


def string_contains(s: Any, sub: Any) -> bool:
    """``s.contains(sub)``."""
    if type(s) is str and type(sub) is str:
        return sub in s
    raise no_overload("contains", s, sub)


def starts_with(s: Any, p: Any) -> bool:
    """``s.startsWith(p)``."""
    if type(s) is str and type(p) is str:
        return s.startswith(p)
    raise no_overload("startsWith", s, p)


def ends_with(s: Any, p: Any) -> bool:
    """``s.endsWith(p)``."""
    if type(s) is str and type(p) is str:
        return s.endswith(p)
    raise no_overload("endsWith", s, p)


Impl = Callable[..., Any]
