"""cel-go's math extension (ext/math): greatest, least, rounding, abs, sign, NaN/infinity tests, bits.

``math.greatest``/``math.least`` take numbers of any numeric type (or one list of them) and
return the winning argument unchanged; rounding functions work on doubles; bit operations on ints
and uints, with shifts by 64 or more giving 0 and right shifts of ints filling with zeros, as
cel-go does.
"""

from __future__ import annotations

import math
from typing import Any

from charter.cel.limits import elements_cost
from charter.cel.signatures import Function, fn
from charter.cel.stdlib import NUMBERS, no_overload
from charter.cel.types import UInt
from charter.cel.values import INT_MAX, INT_MIN, EvalError


def _numbers(name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(args) == 1 and (type(args[0]) is list or type(args[0]) is tuple):
        args = tuple(args[0])
        if not args:
            raise EvalError(f"{name}(): the list is empty")
    if not args:
        raise no_overload(name)
    for a in args:
        if type(a) not in NUMBERS:
            raise no_overload(name, *args)
    return args


def greatest(*args: Any) -> Any:
    """``math.greatest(a, b, ...)`` or ``math.greatest(list)``: the largest number (NaN wins)."""
    nums = _numbers("math.greatest", args)
    best = nums[0]
    for a in nums[1:]:
        if a != a or (best == best and a > best):
            best = a
    return best


def least(*args: Any) -> Any:
    """``math.least(a, b, ...)`` or ``math.least(list)``: the smallest number (NaN wins)."""
    nums = _numbers("math.least", args)
    best = nums[0]
    for a in nums[1:]:
        if a != a or (best == best and a < best):
            best = a
    return best


def _double(name: str, x: Any) -> float:
    if type(x) is not float:
        raise no_overload(name, x)
    return float(x)


def ceil(x: Any) -> float:
    """``math.ceil(double)``."""
    v = _double("math.ceil", x)
    return float(math.ceil(v)) if math.isfinite(v) else v


def floor(x: Any) -> float:
    """``math.floor(double)``."""
    v = _double("math.floor", x)
    return float(math.floor(v)) if math.isfinite(v) else v


def round_(x: Any) -> float:
    """``math.round(double)``: halves round away from zero."""
    v = _double("math.round", x)
    if not math.isfinite(v):
        return v
    a = abs(v)
    f = math.floor(a)
    return math.copysign(float(f + 1 if a - f >= 0.5 else f), v)


def trunc(x: Any) -> float:
    """``math.trunc(double)``."""
    v = _double("math.trunc", x)
    return float(math.trunc(v)) if math.isfinite(v) else v


def abs_(x: Any) -> Any:
    """``math.abs(number)``; the absolute value of the smallest int overflows."""
    t = type(x)
    if t is int:
        if x == INT_MIN:
            raise EvalError("integer overflow")
        return abs(x)
    if t is float:
        return abs(x)
    if t is UInt:
        return x
    raise no_overload("math.abs", x)


def sign(x: Any) -> Any:
    """``math.sign(number)``: -1, 0 or 1 in the number's own type."""
    t = type(x)
    if t is int:
        return (x > 0) - (x < 0)
    if t is UInt:
        return UInt(1 if x else 0)
    if t is float:
        if x != x:
            return x
        return float((x > 0) - (x < 0))
    raise no_overload("math.sign", x)


def is_nan(x: Any) -> bool:
    """``math.isNaN(double)``."""
    return math.isnan(_double("math.isNaN", x))


def is_inf(x: Any) -> bool:
    """``math.isInf(double)``."""
    return math.isinf(_double("math.isInf", x))


def is_finite(x: Any) -> bool:
    """``math.isFinite(double)``."""
    return math.isfinite(_double("math.isFinite", x))


def sqrt(x: Any) -> float:
    """``math.sqrt(number)`` (NaN for negative numbers)."""
    if type(x) not in NUMBERS:
        raise no_overload("math.sqrt", x)
    v = float(x)
    return math.sqrt(v) if v >= 0 else math.nan


def _bits(name: str, a: Any, b: Any) -> type:
    ta = type(a)
    if ta is type(b) and (ta is int or ta is UInt):
        return ta
    raise no_overload(name, a, b)


def _wrap(t: type, v: int) -> Any:
    if t is UInt:
        return UInt(v & 0xFFFFFFFFFFFFFFFF)
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v > INT_MAX else v


def bit_and(a: Any, b: Any) -> Any:
    """``math.bitAnd(a, b)``."""
    return _wrap(_bits("math.bitAnd", a, b), int(a) & int(b))


def bit_or(a: Any, b: Any) -> Any:
    """``math.bitOr(a, b)``."""
    return _wrap(_bits("math.bitOr", a, b), int(a) | int(b))


def bit_xor(a: Any, b: Any) -> Any:
    """``math.bitXor(a, b)``."""
    return _wrap(_bits("math.bitXor", a, b), int(a) ^ int(b))


def bit_not(a: Any) -> Any:
    """``math.bitNot(a)``."""
    t = type(a)
    if t is int or t is UInt:
        return _wrap(t, ~int(a))
    raise no_overload("math.bitNot", a)


def _shift(name: str, a: Any, n: Any) -> tuple[type, int]:
    t = type(a)
    if (t is not int and t is not UInt) or type(n) is not int:
        raise no_overload(name, a, n)
    if n < 0:
        raise EvalError(f"{name}() negative offset: {n}")
    return t, n


def shift_left(a: Any, n: Any) -> Any:
    """``math.bitShiftLeft(a, n)``: 0 for n >= 64."""
    t, k = _shift("math.bitShiftLeft", a, n)
    return _wrap(t, 0 if k >= 64 else int(a) << k)


def shift_right(a: Any, n: Any) -> Any:
    """``math.bitShiftRight(a, n)``: a logical shift (zeros fill in), 0 for n >= 64."""
    t, k = _shift("math.bitShiftRight", a, n)
    return _wrap(t, 0 if k >= 64 else (int(a) & 0xFFFFFFFFFFFFFFFF) >> k)


_NUM = ("int", "uint", "double")
_GREATEST = [f"({a}) -> {a}" for a in _NUM] + [f"(list({a})) -> {a}" for a in _NUM] + [
    f"({a}, {b}) -> dyn" for a in _NUM for b in _NUM if a != b] + [f"({a}, {a}) -> {a}" for a in _NUM] + [
    "(list(dyn)) -> dyn", "(dyn) -> dyn"]  # fmt: skip


def _list_cost(*args: Any) -> int:
    return elements_cost(sum(len(a) for a in args if type(a) is list or type(a) is tuple))


FUNCTIONS: list[Function] = [
    fn("math.greatest", greatest, *_GREATEST, variadic=True, cost=_list_cost,
       doc="the largest of several numbers, or of a list",
       examples=["math.greatest(1, 2.5, 2u) == 2.5", "math.greatest([3, 1, 2]) == 3"]),
    fn("math.least", least, *_GREATEST, variadic=True, cost=_list_cost,
       doc="the smallest of several numbers, or of a list", examples=["math.least(-1, 2) == -1"]),
    fn("math.ceil", ceil, "(double) -> double", doc="round up", examples=["math.ceil(1.2) == 2.0"]),
    fn("math.floor", floor, "(double) -> double", doc="round down", examples=["math.floor(1.8) == 1.0"]),
    fn("math.round", round_, "(double) -> double", doc="round to the nearest, halves away from zero",
       examples=["math.round(2.5) == 3.0", "math.round(-2.5) == -3.0"]),
    fn("math.trunc", trunc, "(double) -> double", doc="round toward zero",
       examples=["math.trunc(-1.7) == -1.0"]),
    fn("math.abs", abs_, "(int) -> int", "(uint) -> uint", "(double) -> double",
       doc="the absolute value", examples=["math.abs(-5) == 5"]),
    fn("math.sign", sign, "(int) -> int", "(uint) -> uint", "(double) -> double",
       doc="-1, 0 or 1", examples=["math.sign(-3.5) == -1.0"]),
    fn("math.isNaN", is_nan, "(double) -> bool", doc="whether a double is NaN",
       examples=["math.isNaN(0.0 / 0.0)"]),
    fn("math.isInf", is_inf, "(double) -> bool", doc="whether a double is infinite",
       examples=["math.isInf(1.0 / 0.0)"]),
    fn("math.isFinite", is_finite, "(double) -> bool", doc="whether a double is neither NaN nor infinite",
       examples=["math.isFinite(1.5)"]),
    fn("math.sqrt", sqrt, "(double) -> double", "(int) -> double", "(uint) -> double",
       doc="the square root", examples=["math.sqrt(16) == 4.0"]),
    fn("math.bitAnd", bit_and, "(int, int) -> int", "(uint, uint) -> uint", doc="bitwise and",
       examples=["math.bitAnd(6, 3) == 2"]),
    fn("math.bitOr", bit_or, "(int, int) -> int", "(uint, uint) -> uint", doc="bitwise or",
       examples=["math.bitOr(6, 3) == 7"]),
    fn("math.bitXor", bit_xor, "(int, int) -> int", "(uint, uint) -> uint", doc="bitwise exclusive or",
       examples=["math.bitXor(6, 3) == 5"]),
    fn("math.bitNot", bit_not, "(int) -> int", "(uint) -> uint", doc="bitwise not",
       examples=["math.bitNot(0) == -1"]),
    fn("math.bitShiftLeft", shift_left, "(int, int) -> int", "(uint, int) -> uint", doc="shift bits left",
       examples=["math.bitShiftLeft(1, 3) == 8"]),
    fn("math.bitShiftRight", shift_right, "(int, int) -> int", "(uint, int) -> uint",
       doc="shift bits right (zeros fill in)", examples=["math.bitShiftRight(8, 3) == 1"]),
]  # fmt: skip
