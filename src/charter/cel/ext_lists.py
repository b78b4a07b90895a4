"""cel-go's list and set extensions (ext/lists, ext/sets): range, slice, flatten, distinct, reverse,
sort, first, last; sets.contains, sets.equivalent, sets.intersects (heterogeneous equality)."""

from __future__ import annotations

from functools import cmp_to_key
from typing import Any

from charter.cel import ext_strings
from charter.cel.limits import elements_cost
from charter.cel.signatures import Function, fn
from charter.cel.stdlib import NUMBERS, contains_elem, equals, less, no_overload
from charter.cel.values import NONE, EvalError, Optional


def _list(name: str, v: Any, *more: Any) -> list[Any]:
    if type(v) is list:
        return v
    if type(v) is tuple:
        return list(v)
    raise no_overload(name, v, *more)


def range_(n: Any) -> list[int]:
    """``lists.range(n)``: [0, 1, ..., n-1]."""
    if type(n) is not int:
        raise no_overload("lists.range", n)
    if n > 100_000:
        raise EvalError("lists.range(): at most 100000 elements")
    return list(range(max(0, n)))


def slice_(items: Any, start: Any, end: Any) -> list[Any]:
    """``list.slice(start, end)``: the elements from ``start`` to ``end`` (exclusive)."""
    lst = _list("slice", items, start, end)
    if type(start) is not int or type(end) is not int:
        raise no_overload("slice", items, start, end)
    if start < 0 or end < 0:
        raise EvalError(f"cannot slice({start}, {end}), negative indexes not supported")
    if start > end:
        raise EvalError(f"cannot slice({start}, {end}), start index must be less than or equal to end index")
    if end > len(lst):
        raise EvalError(f"cannot slice({start}, {end}), list is length {len(lst)}")
    return lst[start:end]


def flatten(items: Any, depth: Any = 1) -> list[Any]:
    """``list.flatten([depth])``: nested lists spliced in, ``depth`` levels deep."""
    lst = _list("flatten", items, depth)
    if type(depth) is not int:
        raise no_overload("flatten", items, depth)
    if depth < 0:
        raise EvalError("level must be non-negative")
    out: list[Any] = []
    for x in lst:
        if (type(x) is list or type(x) is tuple) and depth > 0:
            out.extend(flatten(x, depth - 1))
        else:
            out.append(x)
    return out


def distinct(items: Any) -> list[Any]:
    """``list.distinct()``: the first of each group of equal elements, in order."""
    lst = _list("distinct", items)
    out: list[Any] = []
    for x in lst:
        if not any(equals(x, y) for y in out):
            out.append(x)
    return out


def reverse(items: Any) -> Any:
    """``list.reverse()``, and ``string.reverse()`` of the string extension."""
    if type(items) is str:
        return ext_strings.reverse(items)
    return _list("reverse", items)[::-1]


def _cmp(a: Any, b: Any) -> int:
    return -1 if less(a, b) else (1 if less(b, a) else 0)


def sort(items: Any) -> list[Any]:
    """``list.sort()``: elements of one orderable type in ascending order."""
    lst = _list("sort", items)
    kinds = {type(x) for x in lst}
    if len(kinds) > 1 and not kinds <= NUMBERS:
        raise EvalError("list elements must have the same type")
    return sorted(lst, key=cmp_to_key(_cmp))


def sort_by_keys(items: list[Any], keys: list[Any]) -> list[Any]:
    """The ``sortBy`` macro's result: ``items`` ordered by their computed ``keys`` (stable)."""

    def by_key(i: int, j: int) -> int:
        return _cmp(keys[i], keys[j])

    order = sorted(range(len(items)), key=cmp_to_key(by_key))
    return [items[i] for i in order]


def first(items: Any) -> Optional:
    """``list.first()``: an optional of the first element."""
    lst = _list("first", items)
    return Optional(lst[0]) if lst else NONE


def last(items: Any) -> Optional:
    """``list.last()``: an optional of the last element."""
    lst = _list("last", items)
    return Optional(lst[-1]) if lst else NONE


def sets_contains(a: Any, b: Any) -> bool:
    """``sets.contains(a, b)``: every element of ``b`` is in ``a``."""
    la, lb = _list("sets.contains", a, b), _list("sets.contains", b, a)
    return all(contains_elem(la, x) for x in lb)


def sets_equivalent(a: Any, b: Any) -> bool:
    """``sets.equivalent(a, b)``: the same elements, ignoring order and duplicates."""
    return sets_contains(a, b) and sets_contains(b, a)


def sets_intersects(a: Any, b: Any) -> bool:
    """``sets.intersects(a, b)``: at least one element in common."""
    la, lb = _list("sets.intersects", a, b), _list("sets.intersects", b, a)
    return any(contains_elem(la, x) for x in lb)


def _n(*args: Any) -> int:
    return elements_cost(sum(len(a) for a in args if type(a) is list or type(a) is tuple))


def _nn(*args: Any) -> int:
    sizes = [len(a) for a in args if type(a) is list or type(a) is tuple]
    prod = 1
    for s in sizes:
        prod *= max(1, s)
    return elements_cost(prod)


def _range_cost(n: Any) -> int:
    return elements_cost(max(0, n)) if type(n) is int else 0


FUNCTIONS: list[Function] = [
    fn("lists.range", range_, "(int) -> list(int)", cost=_range_cost, doc="the numbers 0 to n-1",
       examples=["lists.range(3) == [0, 1, 2]"]),
    fn("slice", slice_, "(list(A), int, int) -> list(A)", member=True, cost=_n,
       doc="the elements from one position to another", examples=["[1, 2, 3, 4].slice(1, 3) == [2, 3]"]),
    fn("flatten", flatten, "(list(dyn)) -> list(dyn)", "(list(dyn), int) -> list(dyn)", member=True,
       cost=_n, doc="nested lists spliced in (one level, or n)",
       examples=["[1, [2, 3], [4]].flatten() == [1, 2, 3, 4]"]),
    fn("distinct", distinct, "(list(A)) -> list(A)", member=True, cost=_nn,
       doc="without repeated elements", examples=["[1, 2, 2, 1].distinct() == [1, 2]"]),
    fn("reverse", reverse, "(list(A)) -> list(A)", "(string) -> string", member=True, cost=_n,
       doc="the elements or characters in reverse order",
       examples=["[1, 2, 3].reverse() == [3, 2, 1]", "'abc'.reverse() == 'cba'"]),
    fn("sort", sort, "(list(A)) -> list(A)", member=True, cost=_nn,
       doc="the elements in ascending order", examples=["[3, 1, 2].sort() == [1, 2, 3]"]),
    fn("first", first, "(list(A)) -> optional(A)", member=True, doc="the first element, if any",
       examples=["[1, 2].first().value() == 1"]),
    fn("last", last, "(list(A)) -> optional(A)", member=True, doc="the last element, if any",
       examples=["[1, 2].last().orValue(0) == 2"]),
    fn("sets.contains", sets_contains, "(list(A), list(A)) -> bool", cost=_nn,
       doc="every element of the second list is in the first",
       examples=["sets.contains(['a', 'b', 'c'], ['a', 'c'])"]),
    fn("sets.equivalent", sets_equivalent, "(list(A), list(A)) -> bool", cost=_nn,
       doc="the same elements, in any order", examples=["sets.equivalent([1, 2, 2], [2, 1])"]),
    fn("sets.intersects", sets_intersects, "(list(A), list(A)) -> bool", cost=_nn,
       doc="at least one element in common", examples=["sets.intersects(['a', 'b'], ['b', 'z'])"]),
]  # fmt: skip
