"""The cases issue 17 found wrong, each against the section of the CEL language definition
(google/cel-spec doc/langdef.md) or cel-go extension that says what they give."""

from __future__ import annotations

import math

import pytest

from charter.cel import CelError, CelType, Duration, Timestamp, UInt, compile_condition, compile_unchecked

ERR = CelError("")

CASES = [
    # "Numeric values" / "Equality": heterogeneous numeric equality and lookup
    ("dyn(1) == 1.0", True),
    ("dyn(1) == 1u", True),
    ("3.0 in {1: 1, 2: 2, 3u: 3}", True),
    ("[7, 8, 9][dyn(0.0)]", 7),
    ("[7, 8, 9][dyn(0.1)]", ERR),
    # "Equality": values of different types are unequal, never an error
    ("dyn(1) == null", False),
    ("'elem' in [1u, 'str', 2, b'bytes']", False),
    ("[1, 'foo', 3].exists(e, e == '10')", False),
    ("{'k': 1, 'j': 2} == {'k': 1, 'j': null}", False),
    ("dyn([1]) != null && dyn({}) != null && dyn(1.5) != null", True),
    # "Numeric values": IEEE 754 doubles; ranges of int and uint
    ("0.0 / 0.0", math.nan),
    ("-1.0 / 0.0", -math.inf),
    ("dyn(9223372036854775807) < 9223372036854775808.0", False),
    ("int(-9223372036854775808.0)", ERR),
    ("9223372036854775807 + 1", ERR),
    ("0u - 1u", ERR),
    # "Timestamps and durations": nanoseconds, ranges, accessors
    ("timestamp('2009-02-13T23:31:30.123456789Z')", Timestamp(1234567890, 123456789)),
    ("string(timestamp('2009-02-13T23:31:30.123456789Z'))", "2009-02-13T23:31:30.123456789Z"),
    ("duration('1.5s').getMilliseconds()", 500),
    ("timestamp('9999-12-31T23:59:59Z') + duration('1s')", ERR),
    ("duration('320000000000s')", ERR),
    ("timestamp(1234567890)", Timestamp(1234567890)),
    ("duration('1h30m')", Duration(5400 * 10**9)),
    # "String and Bytes Values": escapes, raw strings, multi-line strings
    ("'\\?'", "?"),
    ("'\\`'", "`"),
    ("'\\X41'", "A"),
    ("'''a\nb'''", "a\nb"),
    ("r'\\d+'", "\\d+"),
    ("'\\u00ff' == '\\xff'", True),
    # "Lists": no negative indexes
    ("[1, 2, 3][-1]", ERR),
    # cel-go ext/strings, ext/math, ext/encoders, optionals, bindings, comprehensions
    ("'Example.COM'.lowerAscii()", "example.com"),
    ("'a,b'.split(',')", ["a", "b"]),
    ("['a', 'b'].join('-')", "a-b"),
    ("'  x '.trim()", "x"),
    ("'tacocat'.substring(4)", "cat"),
    ("'hello'.indexOf('l')", 2),
    ("'hello'.charAt(1)", "e"),
    ("'%d items'.format([3])", "3 items"),
    ("strings.quote('a\"b')", '"a\\"b"'),
    ("math.greatest(1, 2.5, 2u)", 2.5),
    ("math.round(-2.5)", -3.0),
    ("math.isNaN(0.0 / 0.0)", True),
    ("base64.encode(b'hi')", "aGk="),
    ("{'a': 1}.?b.orValue(7)", 7),
    ("optional.of(2).value()", 2),
    ("[1, 2, 3].existsOne(x, x > 2) && [1, 2, 3].exists_one(x, x > 2)", True),
    ("{'a': 1, 'b': 2}.all(k, v, v > 0)", True),
    ("[1, 2].transformList(i, v, i + v)", [1, 3]),
    ("{'a': 1}.transformMap(k, v, v * 10)", {"a": 10}),
    ("cel.bind(x, 3, x * x)", 9),
    ("type(1u) == uint && type('a') == string", True),
    ("cidr('10.0.0.0/8').containsIP('10.1.2.3')", True),
    ("lists.range(3)", [0, 1, 2]),
    ("sets.contains([1, 2, 3], [2])", True),
    ("uint(7)", UInt(7)),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_language_definition(text: str, expected: object) -> None:
    got = compile_unchecked(text).evaluate({})
    if expected is ERR:
        assert isinstance(got, CelError), got
    elif isinstance(expected, float) and math.isnan(expected):
        assert isinstance(got, float) and math.isnan(got)
    else:
        assert got == expected and type(got) is type(expected), got


def test_a_json_amount_compared_with_a_whole_number() -> None:
    # a JSON 5.0 where an open argument is compared with 5: equal ("Numeric values")
    c = compile_condition("args.amount == 5", {"args": CelType.MAP(CelType.STRING, CelType.DYN)})
    assert c.evaluate({"args": {"amount": 5.0}}) is True and c.fn({"args": {"amount": 5.0}}) is True


def test_null_before_an_or_does_not_raise() -> None:
    env = {"args": CelType.MAP(CelType.STRING, CelType.DYN)}
    c = compile_condition("args.cc == null || args.cc.size() > 2", env)
    assert c.evaluate({"args": {"cc": None}}) is True
    assert c.evaluate({"args": {"cc": [1, 2, 3]}}) is True
