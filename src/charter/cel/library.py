"""Every function conditions may call: the standard definitions and the extension libraries, by name.

``GLOBALS`` holds functions called as ``f(x)`` (names may be qualified: ``math.abs``), ``MEMBERS``
those called as ``x.f()``. Operators (``+``, ``==``, ``in`` ...) are compiled directly by the
evaluator and typed by the checker; they are not listed here.
"""

from __future__ import annotations

from typing import Any

from charter.cel import (
    ext_encoders,
    ext_lists,
    ext_math,
    ext_strings,
    grants,
    network,
    optionals,
    paths,
    provenance,
    timelib,
    urls,
)
from charter.cel.limits import text_cost
from charter.cel.signatures import Function, fn
from charter.cel.stdlib import (
    ends_with,
    size,
    starts_with,
    string_contains,
    to_bool,
    to_bytes,
    to_double,
    to_dyn,
    to_int,
    to_string,
    to_uint,
)
from charter.cel.values import EvalError, type_of


def _text_cost(*args: Any) -> int:
    return sum(text_cost(len(a)) for a in args if type(a) is str or type(a) is bytes)


def _matches_placeholder(text: Any, pattern: Any) -> bool:  # replaced by the evaluator
    raise EvalError("matches() is compiled by the evaluator")


_SIZE = ("(string) -> int", "(bytes) -> int", "(list(A)) -> int", "(map(K, V)) -> int")

STANDARD: list[Function] = [
    fn("size", size, *_SIZE, doc="number of characters, bytes, elements or entries",
       examples=["size('héllo') == 5", "size([1, 2]) == 2"]),
    fn("size", size, *_SIZE, member=True, examples=["'abc'.size() == 3"]),
    fn("int", to_int, "(int) -> int", "(uint) -> int", "(double) -> int", "(string) -> int",
       "(timestamp) -> int", "(bool) -> int",
       doc="convert to int (doubles truncate; a range error past int64)",
       examples=["int('42') == 42", "int(2.9) == 2"]),
    fn("uint", to_uint, "(uint) -> uint", "(int) -> uint", "(double) -> uint", "(string) -> uint",
       doc="convert to uint", examples=["uint(42) == 42u"]),
    fn("double", to_double, "(double) -> double", "(int) -> double", "(uint) -> double",
       "(string) -> double", doc="convert to double", examples=["double('2.5') == 2.5"]),
    fn("string", to_string, "(string) -> string", "(int) -> string", "(uint) -> string",
       "(double) -> string", "(bool) -> string", "(bytes) -> string", "(timestamp) -> string",
       "(duration) -> string", "(net.IP) -> string", "(net.CIDR) -> string",
       doc="convert to text", examples=["string(42) == '42'", "string(duration('90s')) == '90s'"]),
    fn("bytes", to_bytes, "(bytes) -> bytes", "(string) -> bytes", doc="UTF-8 bytes of a text",
       examples=["bytes('ab') == b'ab'"]),
    fn("bool", to_bool, "(bool) -> bool", "(string) -> bool", doc="convert 'true'/'false' (and t, f, 1, 0)",
       examples=["bool('true')"]),
    fn("dyn", to_dyn, "(A) -> dyn", doc="the value with its type checked only at run time",
       examples=["dyn(1) == 1.0"]),
    fn("type", type_of, "(A) -> type", doc="the type of a value",
       examples=["type(1) == int", "type('a') == string"]),
    fn("timestamp", timelib.to_timestamp, "(string) -> timestamp", "(int) -> timestamp",
       "(timestamp) -> timestamp", doc="an RFC 3339 text, or seconds since 1970, as a timestamp",
       examples=["timestamp('2025-01-31T12:00:00Z') == timestamp(1738324800)"]),
    fn("duration", timelib.to_duration, "(string) -> duration", "(duration) -> duration",
       doc="a duration such as 1h30m, 1.5s, 300ms", examples=["duration('1h30m') == duration('90m')"]),
    fn("contains", string_contains, "(string, string) -> bool", member=True, cost=_text_cost,
       doc="whether the text contains another", examples=["'hello'.contains('ell')"]),
    fn("startsWith", starts_with, "(string, string) -> bool", member=True, cost=_text_cost,
       doc="whether the text starts with another", examples=["'hello'.startsWith('he')"]),
    fn("endsWith", ends_with, "(string, string) -> bool", member=True, cost=_text_cost,
       doc="whether the text ends with another", examples=["'hello'.endsWith('lo')"]),
    fn("matches", _matches_placeholder, "(string, string) -> bool", member=True, cost=_text_cost,
       doc="whether the text contains a match of an RE2 regular expression",
       examples=["'ACME-7'.matches('^[A-Z]+-[0-9]+$')", "'send money'.matches(r'\\bsend\\b')"]),
    fn("matches", _matches_placeholder, "(string, string) -> bool", cost=_text_cost,
       examples=["matches('abc', 'b')"]),
    fn("labels", provenance.placeholder, "(A) -> list(string)",
       doc="the provenance labels of an argument or element (sorted); [] for a computed value",
       examples=["labels('computed') == []"]),
    fn("sources", provenance.placeholder, "(A) -> list(map(string, dyn))",
       doc="where an argument or element came from: kind (user, agent, call, unknown), call, tool, "
           "field, labels, inputs; one unknown source for a value without provenance",
       examples=["sources('computed')[0].kind == 'unknown'"]),
    fn("granted", grants.placeholder, "(string) -> bool",
       doc="whether a grant of the request's run, of the kind named (a text literal), covers the "
           "request and has uses left; false without a run or a grant",
       examples=["granted('pay')"]),
]  # fmt: skip

_ACCESSOR_DOCS = {
    "getFullYear": ("the year", "timestamp('2025-01-31T12:00:00Z').getFullYear() == 2025"),
    "getMonth": ("the month, 0 for January", "timestamp('2025-01-31T12:00:00Z').getMonth() == 0"),
    "getDate": ("the day of the month, from 1", "timestamp('2025-01-31T12:00:00Z').getDate() == 31"),
    "getDayOfMonth": (
        "the day of the month, from 0",
        "timestamp('2025-01-31T12:00:00Z').getDayOfMonth() == 30",
    ),
    "getDayOfWeek": (
        "the day of the week, 0 for Sunday",
        "timestamp('2025-01-31T12:00:00Z').getDayOfWeek() == 5",
    ),
    "getDayOfYear": ("the day of the year, from 0", "timestamp('2025-02-01T00:00:00Z').getDayOfYear() == 31"),
    "getHours": (
        "the hour (of a timestamp, in a time zone if given) or the whole hours of a duration",
        "timestamp('2025-01-31T12:00:00Z').getHours('Europe/Paris') == 13",
    ),
    "getMinutes": ("the minute, or the whole minutes of a duration", "duration('1h30m').getMinutes() == 90"),
    "getSeconds": (
        "the second, or the whole seconds of a duration",
        "timestamp('2025-01-31T12:00:07Z').getSeconds() == 7",
    ),
    "getMilliseconds": (
        "the milliseconds within the second",
        "timestamp('2025-01-31T12:00:00.250Z').getMilliseconds() == 250",
    ),
}

for _name in timelib.ACCESSORS:
    _doc, _example = _ACCESSOR_DOCS[_name]
    STANDARD.append(
        fn(
            _name,
            timelib.accessor(_name),
            "(timestamp) -> int",
            "(timestamp, string) -> int",
            *(
                ["(duration) -> int"]
                if _name in ("getHours", "getMinutes", "getSeconds", "getMilliseconds")
                else []
            ),
            member=True,
            doc=_doc,
            examples=[_example],
        )
    )

ALL: list[Function] = [
    *STANDARD,
    *ext_strings.FUNCTIONS,
    *ext_math.FUNCTIONS,
    *ext_lists.FUNCTIONS,
    *ext_encoders.FUNCTIONS,
    *optionals.FUNCTIONS,
    *network.FUNCTIONS,
    *urls.FUNCTIONS,
    *paths.FUNCTIONS,
]

GLOBALS: dict[str, Function] = {f.name: f for f in ALL if not f.member}
MEMBERS: dict[str, Function] = {f.name: f for f in ALL if f.member}

#: Macros and special forms, for the docs and "did you mean" hints.
MACROS = ("has", "all", "exists", "exists_one", "existsOne", "map", "filter", "transformList",
          "transformMap", "transformMapEntry", "sortBy", "optMap", "optFlatMap", "cel.bind")  # fmt: skip
