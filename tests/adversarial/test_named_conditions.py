"""Attack class: named constants and named conditions (issue 18, phase B step 1).

The invariants attacked: a hostile declaration never compiles into a policy that allows more than
its text says (a bad file, a bad value or a cycle is an error and no policy); inlining is bounded
(conditions calling conditions cannot blow up the compile); a big constant set stays one lookup;
an error inside a named condition never allows.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import charter
from charter.api import check
from charter.compiler.pipeline import compile_text
from charter.engine.engine import Engine
from charter.enums import Outcome

PERMIT = (
    "tool bank.pay {{ arg iban: string  arg amount: double }}\n"
    'permit p {{\n  action call bank.pay\n  when {cond}\n  reason "r"\n}}\n'
)


def _policy_dir(tmp_path: Path, yaml_text: str | bytes, cond: str = "args.iban in payees") -> Path:
    data = tmp_path / "payees.yaml"
    if isinstance(yaml_text, bytes):
        data.write_bytes(yaml_text)
    else:
        data.write_text(yaml_text)
    policy = tmp_path / "p.charter"
    policy.write_text('policy p\nconst payees: set of string from "payees.yaml"\n' + PERMIT.format(cond=cond))
    return policy


def _errors(path: Path) -> list[str]:
    return sorted({d.code.value for d in check([path]).diagnostics if d.is_error})


def _pay(engine: Engine, iban: object, amount: object = 1.0) -> Outcome:
    return engine.decide(
        {
            "actor": {"id": "a"},
            "action": {"kind": "call", "target": "bank.pay", "args": {"iban": iban, "amount": amount}},
        }
    ).outcome


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "E205"),  # empty: no key
        ("payees: [a]\nother: [b]\n", "E205"),  # two keys
        ("- a\n- b\n", "E205"),  # a list, not one key
        ("payees: {a: 1}\n", "E205"),  # a mapping value
        ("payees: [[a], [b]]\n", "E205"),  # nested lists
        ("payees: [a, 1]\n", "E303"),  # a number in a set of texts
        ("payees: [.nan]\n", "E303"),
        ("payees: [a\n", "E205"),  # not YAML
        ("payees: &x [a]\nz: *x\n", "E205"),
        (b"payees: [\xff]\n", "E205"),  # not UTF-8
    ],
)
def test_a_malformed_constants_file_is_an_error_and_no_policy(
    tmp_path: Path, text: str | bytes, code: str
) -> None:
    path = _policy_dir(tmp_path, text)
    assert code in _errors(path)
    assert check([path]).policy is None


def test_a_constants_file_outside_the_policy_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.yaml").write_text("k: [x]\n")
    inner = tmp_path / "policy"
    inner.mkdir()
    (inner / "p.charter").write_text(
        'policy p\nconst k: set of string from "../secret.yaml"\n' + PERMIT.format(cond="args.iban in k")
    )
    assert _errors(inner / "p.charter") == ["E205"]
    (inner / "q.charter").write_text('policy q\nconst k: set of string from "/etc/hostname"\n')
    assert "E205" in _errors(inner / "q.charter")


def test_a_missing_constants_file_is_e204(tmp_path: Path) -> None:
    policy = tmp_path / "p.charter"
    policy.write_text(
        'policy p\nconst payees: set of string from "nope.yaml"\n' + PERMIT.format(cond="args.iban in payees")
    )
    assert _errors(policy) == ["E204"]


def test_too_many_values_in_a_file_or_inline_are_refused(tmp_path: Path) -> None:
    path = _policy_dir(tmp_path, "payees: [" + ", ".join(f"v{i}" for i in range(100_001)) + "]\n")
    assert _errors(path) == ["E205"]
    inline = "const xs = [" + ", ".join(f'"v{i}"' for i in range(513)) + "]\n"
    assert "E304" in {d.code.value for d in compile_text(inline).diagnostics}


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = _policy_dir(tmp_path, "payees: [" + "a, " * (2 * 1024 * 1024) + "b]\n")
    started = time.process_time()
    assert _errors(path) == ["E205"]
    assert time.process_time() - started < 2.0


def test_a_set_of_100000_values_is_one_lookup_per_decision(tmp_path: Path) -> None:
    path = _policy_dir(tmp_path, "payees:\n" + "".join(f"  - IBAN{i:07d}\n" for i in range(100_000)))
    result = check([path])
    assert result.policy is not None, result.diagnostics
    engine = Engine(result.policy)
    assert _pay(engine, "IBAN0099999") is Outcome.ALLOW
    assert _pay(engine, "IBAN0100000") is Outcome.DENY
    assert _pay(engine, 99999) is Outcome.DENY  # a number where a text is declared never matches
    best = min(_timed(engine) for _ in range(3))
    assert best < 0.005  # 200 decisions; a linear scan of 100,000 values each would take seconds


def _timed(engine: Engine) -> float:
    started = time.process_time()
    for i in range(200):
        _pay(engine, f"IBAN{i * 499:07d}")
    return (time.process_time() - started) / 200


@pytest.mark.parametrize(
    ("value", "declared"),
    [
        ("1" + "0" * 400 + ".0", "double"),
        ("-1" + "0" * 400 + ".0", "double"),
        ("99999999999999999999", "int"),
        ("1.5", "int"),
        ('"1"', "int"),
        ("1", "bool"),
    ],
)
def test_out_of_range_or_mistyped_constants_are_errors(value: str, declared: str) -> None:
    codes = {d.code.value for d in compile_text(f"const k: {declared} = {value}\n").diagnostics if d.is_error}
    assert codes and codes <= {"E303", "E104", "E101"}


def test_conditions_calling_conditions_cannot_blow_up_the_compile() -> None:
    # Each level calls the one below three times: written out, level 12 would be 3^12 bodies.
    lines = ["condition c0(x: int) = x > 0"]
    lines += [
        f"condition c{i}(x: int) = c{i - 1}(x) && c{i - 1}(x + 1) && c{i - 1}(x + 2)" for i in range(1, 13)
    ]
    text = (
        "\n".join(lines)
        + '\ntool t { arg n: int }\npermit p {\n  action call t\n  when c12(args.n)\n  reason "r"\n}\n'
    )
    started = time.process_time()
    result = compile_text(text)
    assert time.process_time() - started < 10.0
    assert result.policy is None
    assert "E304" in {d.code.value for d in result.diagnostics}


def test_a_long_chain_of_conditions_compiles_without_recursion_trouble() -> None:
    lines = ["condition c0(x: int) = x > 0"]
    lines += [f"condition c{i}(x: int) = c{i - 1}(x)" for i in range(1, 300)]
    text = (
        "\n".join(lines)
        + '\ntool t { arg n: int }\npermit p {\n  action call t\n  when c299(args.n)\n  reason "r"\n}\n'
    )
    result = compile_text(text)
    if result.policy is not None:
        engine = Engine(result.policy)
        d = engine.decide({"actor": {"id": "a"}, "action": {"kind": "call", "target": "t", "args": {"n": 0}}})
        assert d.outcome is Outcome.DENY
    else:
        assert {d.code.value for d in result.diagnostics if d.is_error} <= {"E304"}


def test_a_cycle_through_many_conditions_is_reported_once_and_no_policy() -> None:
    lines = [f"condition c{i}(x: int) = c{(i + 1) % 50}(x)" for i in range(50)]
    result = compile_text("\n".join(lines) + "\n")
    errors = [d for d in result.diagnostics if d.is_error]
    assert [d.code.value for d in errors] == ["E203"]
    assert result.policy is None


@pytest.mark.parametrize(
    "name",
    ["actor", "args", "run", "context", "tool", "int", "string", "true", "in", "has", "size", "matches"],
)
def test_a_name_that_would_hide_a_root_a_type_or_a_function_is_refused(name: str) -> None:
    codes = {
        d.code.value for d in compile_text(f"condition {name}(x: int) = x > 0\n").diagnostics if d.is_error
    }
    if name in ("true", "in"):
        assert codes  # not even a name to the grammar, or E207
    else:
        assert codes == {"E207"}


def test_a_parameter_shadowing_a_constant_or_a_root_is_refused() -> None:
    assert "E202" in {
        d.code.value for d in compile_text('const k = "x"\ncondition c(k: string) = k == ""\n').diagnostics
    }
    assert "E207" in {
        d.code.value for d in compile_text('condition c(run: string) = run == ""\n').diagnostics
    }


def test_errors_inside_a_named_condition_never_allow() -> None:
    policy = charter.loads(
        "condition big(v: double) = v > 10.0 && [1, 2][5] == 1\n"
        "condition strict(v: any) = v.size() > 0\n"
        + PERMIT.format(cond="!big(args.amount) && strict(args.iban)")
    )
    engine = Engine(policy)
    assert _pay(engine, "x", 1.0) is Outcome.ALLOW  # the control: no error, the permit holds
    failing = engine.decide(
        {
            "actor": {"id": "a"},
            "action": {"kind": "call", "target": "bank.pay", "args": {"iban": "x", "amount": 20.0}},
        }
    )
    assert failing.outcome is Outcome.DENY
    assert [f.where for f in failing.failures] == ["rule p"]
    assert "index" in failing.failures[0].error or "out of range" in failing.failures[0].error
    assert _pay(engine, "", 1.0) is Outcome.DENY


# ---- nesting counts once written out (docs/language.md, "Compiled inline") -----------------------
NEST = (
    "tool t {{ arg xs: list of int  arg ys: list of int  arg zs: list of int }}\n"
    "{defs}\n"
    'permit p {{\n  action call t\n  when {cond}\n  reason "r"\n}}\n'
)


def _nest_problems(defs: str, cond: str) -> list[tuple[str, str]]:
    text = "policy p\n" + NEST.format(defs=defs, cond=cond)
    result = compile_text(text, "p.charter")
    return [(d.code.value, text[d.span.start : d.span.end]) for d in result.diagnostics if d.is_error]


@pytest.mark.parametrize(
    ("defs", "cond", "at"),
    [
        # a body with two macros called inside two more: what written out is E304
        (
            "condition deep(xs: list of int, ys: list of int) = xs.all(x, ys.all(y, x != y))",
            "args.zs.all(z, args.zs.exists(w, deep(args.xs, args.ys)))",
            "deep(args.xs, args.ys)",
        ),
        # an argument with a macro lands inside the body's macros
        (
            "condition every(xs: list of int, b: bool) = xs.all(x, b)",
            "every(args.xs, args.ys.all(y, args.zs.all(z, args.xs.all(w, y != z + w))))",
            "args.xs.all(w, y != z + w)",
        ),
        # a condition calling a condition inside its own macro: refused where it is declared
        (
            "condition one(ys: list of int) = ys.all(y, ys.all(v, y > v))\n"
            "condition two(xs: list of int, ys: list of int) = xs.all(x, ys.exists(y, one(ys)))",
            "two(args.xs, args.ys)",
            "one(ys)",
        ),
    ],
)
def test_a_named_condition_cannot_nest_macros_deeper_than_the_text_may(defs: str, cond: str, at: str) -> None:
    problems = _nest_problems(defs, cond)
    assert ("E304", at) in problems, problems
    # once: a condition refused where it is declared is not reported again where it is called
    assert problems == [("E304", at)]


def test_nesting_up_to_the_limit_through_named_conditions_compiles() -> None:
    defs = "condition inner(ys: list of int, x: int) = ys.all(y, ys.all(v, x != y + v))"
    assert _nest_problems(defs, "args.xs.all(x, inner(args.ys, x))") == []
    text = "policy p\n" + NEST.format(defs=defs, cond="args.xs.all(x, inner(args.ys, x))")
    engine = Engine(compile_text(text, "p.charter").policy)
    req = {"actor": {"id": "a"}, "action": {"target": "t", "args": {"xs": [1, 2], "ys": [3], "zs": []}}}
    assert engine.decide(req).outcome is Outcome.ALLOW
    req["action"]["args"]["ys"] = [1]  # 2 != 1 + 1 fails  # type: ignore[index]
    assert engine.decide(req).outcome is Outcome.DENY
