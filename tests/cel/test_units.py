"""Unit tests for charter.cel: values, errors, checking, references, explain, fast path."""

from __future__ import annotations

import datetime

import pytest

from charter.cel import (
    CelCompileError,
    CelError,
    CelType,
    Limits,
    ProblemKind,
    UInt,
    compile_condition,
)
from charter.cel.types import BOOL, DOUBLE, DURATION, DYN, INT, STRING, TIMESTAMP

ENV = {
    "actor": CelType.OBJECT({"id": STRING, "roles": CelType.LIST(STRING), "clearance": INT, "team": STRING}),
    "request": CelType.OBJECT({"amount": DOUBLE, "tool": STRING}, open=True),
    "args": CelType.MAP(STRING, DYN),
    "signals": CelType.LIST(CelType.OBJECT({"kind": STRING, "score": DOUBLE})),
    "now": TIMESTAMP,
    "window": DURATION,
    "flag": BOOL,
    "d": DYN,
}
ACT = {
    "actor": {"id": "a1", "roles": ["risk", "ops"], "clearance": 3, "team": "blue"},
    "request": {"amount": 250.0, "tool": "wire_transfer"},
    "args": {"amount": 10, "to": "acme"},
    "signals": [{"kind": "fraud", "score": 0.9}, {"kind": "ok", "score": 0.1}],
    "now": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC),
    "window": datetime.timedelta(hours=2),
    "flag": True,
    "d": 5,
}


def ev(text: str, act: dict[str, object] | None = None, expect_bool: bool = False) -> object:
    c = compile_condition(text, ENV, expect_bool=expect_bool)
    a = ACT if act is None else act
    v = c.evaluate(a)
    f = c.fn(a)
    assert repr(v) == repr(f), (v, f)
    return v


def problems(text: str, env: dict[str, CelType] | None = None) -> list[tuple[str, str, str | None]]:
    with pytest.raises(CelCompileError) as ei:
        compile_condition(text, ENV if env is None else env)
    return [(p.kind.name, p.message, p.help) for p in ei.value.problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("7 / 2", 3),
        ("-7 / 2", -3),
        ("-7 % 2", -1),
        ("1.5 * 2.0", 3.0),
        ("3u + 4u", UInt(7)),
        ("'ab' + 'c'", "abc"),
        ("b'a' + b'b'", b"ab"),
        ("[1] + [2]", [1, 2]),
        ("{'a': 1}", {"a": 1}),
        ("null", None),
        ("size('abc')", 3),
        ("'abc'.size()", 3),
        ("actor.roles.size()", 2),
        ("int('12')", 12),
        ("uint(5)", UInt(5)),
        ("double(2)", 2.0),
        ("string(15)", "15"),
        ("bool('true')", True),
        ("actor.roles.map(r, r + '!')", ["risk!", "ops!"]),
        ("[1, 2, 3].filter(x, x > 1)", [2, 3]),
        ("args['to']", "acme"),
        ("actor.roles[1]", "ops"),
        ("flag ? 'y' : 'n'", "y"),
    ],
)
def test_values(text: str, expected: object) -> None:
    v = ev(text)
    assert v == expected and type(v) is type(expected)


@pytest.mark.parametrize(
    "text",
    [
        "9223372036854775807 + 1",
        "-9223372036854775808 - 1",
        "1 / 0",
        "5 % 0",
        "0u - 1u",
        "uint(-1)",
        "int('x')",
        "d.missing",
        "args.nothere",
        "actor.roles[5]",
        "[0].map(x, 1 / x)",
    ],
)
def test_errors_are_values(text: str) -> None:
    assert isinstance(ev(text), CelError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("false && 1 / 0 == 1", False),
        ("1 / 0 == 1 && false", False),
        ("true || 1 / 0 == 1", True),
        ("1 / 0 == 1 || true", True),
        ("!(1 / 0 == 1 && false)", True),
    ],
)
def test_logic_absorbs_errors(text: str, expected: bool) -> None:
    assert ev(text) is expected


def test_logic_propagates_errors() -> None:
    assert isinstance(ev("true && 1 / 0 == 1"), CelError)
    assert isinstance(ev("false || 1 / 0 == 1"), CelError)


def test_anchor_expression_and_explain() -> None:
    text = 'request.amount > 100.0 && request.tool in ["wire_transfer", "pay_invoice"] ' \
        '&& actor.team != "finance"'  # fmt: skip
    c = compile_condition(text, ENV)
    assert c.fn(ACT) is True
    assert c.fn({**ACT, "request": {"amount": 5.0, "tool": "x"}}) is False
    # an int where a double is declared: the fast path defers to the evaluator, which compares
    # numbers across types (langdef "Numeric values")
    odd = {**ACT, "request": {"amount": 500, "tool": "wire_transfer"}}
    assert c.fn(odd) is True and c.evaluate(odd) is True
    assert c.references == frozenset({"request.amount", "request.tool", "actor.team"})
    assert c.result_type == BOOL
    ex = c.explain({**ACT, "actor": {**ACT["actor"], "team": "finance"}})  # type: ignore[dict-item]
    assert ex == [
        ("request.amount > 100.0", True),
        ('request.tool in ["wire_transfer", "pay_invoice"]', True),
        ('actor.team != "finance"', False),
        (text, False),
    ]


def test_membership_has_and_macros() -> None:
    assert ev("'risk' in actor.roles") is True
    assert ev("'x' in actor.roles") is False
    assert ev("'to' in args") is True
    assert ev("has(actor.team)") is True
    assert ev("has(args.nope)") is False
    assert ev("signals.exists(s, s.kind == 'fraud' && s.score > 0.5)") is True
    assert ev("signals.all(s, s.score > 0.5)") is False
    assert ev("signals.exists_one(s, s.score > 0.05)") is False
    assert ev("actor.id.startsWith('a') && actor.id.endsWith('1')") is True
    assert ev("actor.id.matches('^a[0-9]+$')") is True
    assert ev("actor.team.contains('lu')") is True


def test_timestamps_and_durations() -> None:
    assert ev("now > timestamp('2024-01-01T00:00:00Z')") is True
    assert ev("window > duration('90m')") is True
    assert ev("now + window > now") is True
    assert ev("now.getFullYear()") == 2024


def test_numbers_compare_across_types_at_run_time() -> None:
    # langdef "Numeric values": ordering and equality across int, uint and double; a bool is not a
    # number (the checker rejects these statically when the types are known).
    assert ev("d > 4") is True
    assert ev("d > 4.0") is True
    assert ev("d == 5.0") is True
    assert ev("dyn(true) == 1") is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("actor.clearence > 2", [("UNKNOWN_NAME", "unknown field 'clearence' of actor",
                                  "did you mean 'clearance'?")]),
        ("actr.id == 'a'", [("UNKNOWN_NAME", "unknown name 'actr'", "did you mean 'actor'?")]),
        ("actor.clearance >= '3'", [("TYPE", "'>=' compares a whole number (int) with a text "
                                     "(string)", "remove the quotes around the number, or "
                                     "convert with int(...)/string(...)")]),
        ("size(actor.clearance) > 1", [("BAD_CALL", "no matching overload for 'size' applied to (int)",
                                        "size takes (string); (bytes); (list(A)); (map(K, V))")]),
        ("actor.id - 'x' == ''", [("TYPE", "'-' cannot be used with a text (string) and a "
                                   "text (string)", None)]),
        ("request.amount > 100", [("TYPE", "'>' compares a decimal number (double) with a whole "
                                   "number (int)", "write whole numbers as decimals (e.g. "
                                   "100.0) or convert with double(...)")]),
        ("actor.clearance", [("NOT_BOOL", "the condition must be true or false, but it gives "
                              "an int", "compare the value with something, e.g. x > 0")]),
        ("actor.clearance && flag", [("TYPE", "'&&' needs true/false values, but "
                                      "actor.clearance is a whole number (int)", None)]),
        ("foo(1)", [("UNSUPPORTED", "unknown or unsupported function 'foo()'", None)]),
        ("type(1) == 1", [("TYPE", "'==' compares a type with a whole number (int)", None)]),
        ("actor.id ==", [("SYNTAX", "syntax error: the condition ends too early (something is "
                          "missing at the end)", None)]),
        ("actor.id == 'a' )", [("SYNTAX", "syntax error: unexpected ')' at character 17",
                                None)]),
        (".actor.id == 'a'", [("UNSUPPORTED", "names starting with '.' are not supported",
                               "remove the leading '.'")]),
        ("[1].reduce(a, b, 0, a + b) > 0", [("UNSUPPORTED", "unknown or unsupported method "
                                             "'reduce()'", "did you mean 'replace'?")]),
    ],
)  # fmt: skip
def test_compile_problems(text: str, expected: list[tuple[str, str, str | None]]) -> None:
    assert problems(text) == expected


def test_problem_span_and_kind() -> None:
    with pytest.raises(CelCompileError) as ei:
        compile_condition("flag && actor.clearence > 2", ENV)
    (p,) = ei.value.problems
    assert p.kind is ProblemKind.UNKNOWN_NAME
    assert "flag && actor.clearence > 2"[p.start : p.end] == "actor.clearence"


def test_dyn_disables_checking_and_open_objects() -> None:
    compile_condition("d.anything.goes > 'x'", ENV)
    compile_condition("request.other == 1", ENV)
    assert compile_condition("args.amount > 5", ENV).references == frozenset({"args.amount"})


def test_references() -> None:
    c = compile_condition(
        "actor.clearance >= 2 && args['amount'] > 5 && signals.exists(s, s.score > 0.5) && has(actor.team)",
        ENV,
    )
    assert c.references == frozenset({"actor.clearance", "args.amount", "signals", "actor.team"})


def test_result_type_and_expect_bool_false() -> None:
    c = compile_condition("actor.clearance + 1", ENV, expect_bool=False)
    assert c.result_type == INT and c.evaluate(ACT) == 4


def test_missing_activation_values_are_errors() -> None:
    c = compile_condition("actor.clearance > 2", ENV)
    assert isinstance(c.fn({}), CelError)
    assert isinstance(c.evaluate({"actor": {}}), CelError)
    assert c.fn({"actor": {"clearance": 3}}) is True
    # bool is not an int: the fast path defers, the evaluator finds no overload of > for it
    odd = {"actor": {"clearance": True}}
    assert isinstance(c.fn(odd), CelError) and isinstance(c.evaluate(odd), CelError)
    assert isinstance(c.fn({"actor": {"clearance": 2**70}}), CelError)  # out of int64 range


def test_limits_are_configurable() -> None:
    with pytest.raises(CelCompileError) as ei:
        compile_condition("flag && flag", ENV, limits=Limits(max_length=5))
    assert ei.value.problems[0].kind is ProblemKind.TOO_COMPLEX
