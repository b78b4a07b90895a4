"""Named constants and named conditions (issue 18, phase B step 1): syntax, checks, inlining, fmt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import charter
from charter.api import check
from charter.compiler.pipeline import compile_text
from charter.engine.engine import Engine
from charter.enums import Outcome
from charter.syntax import ast, parse_text
from charter.syntax.printer import format_text

POLICY = """
policy assistant
const org_domain = "lumen.example"
const members: set of string = ["amir", "beth", "chen", "amir"]
const cap = 1000.0
const max_recipients: int = 5
condition colleague(addr: string) = addr.endsWith("@" + org_domain)
condition all_colleagues(addrs: list of string) =
  addrs.size() > 0 && addrs.size() <= max_recipients && addrs.all(a, colleague(a))
condition member(name: string, among: set of string) = name in among
tool mail.send { arg to: list of string  arg body: string }
tool chat.add { arg user: string }
tool bank.pay { arg iban: string  arg amount: double }
permit internal-mail {
  action call mail.send
  when all_colleagues(args.to)
  reason "Mail to colleagues only."
}
permit add-member {
  action call chat.add
  when member(args.user, members)
  reason "Members only."
}
permit small-pay {
  action call bank.pay
  when args.amount <= cap
  reason "Small payments."
}
"""


def _engine(text: str = POLICY) -> Engine:
    return Engine(charter.loads(text))


def _decide(engine: Engine, target: str, args: dict[str, Any]) -> Any:
    return engine.decide(
        {"actor": {"id": "assistant"}, "action": {"kind": "call", "target": target, "args": args}}
    )


def _codes(text: str) -> list[str]:
    return sorted(d.code.value for d in compile_text(text).diagnostics)


# ---- syntax ------------------------------------------------------------------------------------


def test_declarations_parse_into_typed_nodes_with_spans() -> None:
    module = parse_text(POLICY).module
    assert module is not None
    consts = [i for i in module.items if isinstance(i, ast.ConstDecl)]
    conds = [i for i in module.items if isinstance(i, ast.ConditionDecl)]
    assert [c.name.value for c in consts] == ["org_domain", "members", "cap", "max_recipients"]
    assert consts[1].type == ast.TypeRef(name="set", element=ast.TypeRef(name="string"))
    assert consts[1].value == ("amir", "beth", "chen", "amir")
    assert [c.name.value for c in conds] == ["colleague", "all_colleagues", "member"]
    assert [p.name.value for p in conds[2].params] == ["name", "among"]
    body = conds[1]
    assert POLICY[body.body_span.start : body.body_span.end].rstrip() == body.body
    assert body.name.span.line == 8


def test_fmt_is_stable_and_keeps_the_ast() -> None:
    messy = (
        'const   org_domain="lumen.example"\nconst cap=1_000.50\n'
        'const members : set of string = ["a",\n "b"]\n'
        'condition colleague( addr : string ) = addr.endsWith("@" + org_domain)\n'
        "condition two(xs: list of string) =\n      xs.all(x, colleague(x)) &&\n   xs.size() > 0\n"
    )
    out = format_text(messy)
    assert out is not None
    assert 'const org_domain = "lumen.example"' in out
    assert "const cap = 1_000.50" in out
    assert 'const members: set of string = ["a", "b"]' in out
    assert "condition colleague(addr: string) = addr.endsWith" in out
    assert format_text(out) == out
    assert parse_text(out).module == parse_text(messy).module


def test_a_constants_file_prints_as_written() -> None:
    text = 'const payees: set of string from "payees.yaml"\n'
    assert format_text(text) == text


# ---- decisions ---------------------------------------------------------------------------------


def test_a_named_condition_decides_like_the_text_written_out() -> None:
    engine = _engine()
    assert _decide(engine, "mail.send", {"to": ["beth@lumen.example"], "body": ""}).outcome is Outcome.ALLOW
    mixed = _decide(engine, "mail.send", {"to": ["beth@lumen.example", "mark@exfil.example"], "body": ""})
    assert mixed.outcome is Outcome.DENY
    six = [f"p{i}@lumen.example" for i in range(6)]
    assert _decide(engine, "mail.send", {"to": six, "body": ""}).outcome is Outcome.DENY
    assert _decide(engine, "mail.send", {"to": [], "body": ""}).outcome is Outcome.DENY
    written_out = POLICY.replace(
        "when all_colleagues(args.to)",
        'when args.to.size() > 0 && args.to.size() <= 5 && args.to.all(a, a.endsWith("@" + "lumen.example"))',
    )
    other = _engine(written_out)
    for to in (["beth@lumen.example"], ["x@evil.example"], six, [], ["a@lumen.example", "b@lumen.example"]):
        one = _decide(engine, "mail.send", {"to": to, "body": ""})
        two = _decide(other, "mail.send", {"to": to, "body": ""})
        assert (one.outcome, [h.id for h in one.rules]) == (two.outcome, [h.id for h in two.rules])


def test_constants_are_compiled_in_sets_dedupe_and_numbers_keep_their_type() -> None:
    engine = _engine()
    assert _decide(engine, "chat.add", {"user": "chen"}).outcome is Outcome.ALLOW
    assert _decide(engine, "chat.add", {"user": "mallory"}).outcome is Outcome.DENY
    assert _decide(engine, "bank.pay", {"iban": "x", "amount": 1000.0}).outcome is Outcome.ALLOW
    assert _decide(engine, "bank.pay", {"iban": "x", "amount": 1000.5}).outcome is Outcome.DENY
    result = compile_text(POLICY)
    assert result.symbols is not None
    members = next(r for r in result.lowered.rules if r.id == "add-member")  # type: ignore[union-attr]
    # the constant is compiled in: the condition reads only the request's args
    assert members.conditions[0].references == frozenset({"args.user"})


def test_a_constants_file_is_read_relative_to_the_policy_and_is_part_of_the_revision(tmp_path: Path) -> None:
    (tmp_path / "payees.yaml").write_text("payees:\n  - NL91ABNA0417164300\n  - DE89370400440532013000\n")
    (tmp_path / "p.charter").write_text(
        'policy p\nconst payees: set of string from "payees.yaml"\ntool bank.pay { arg iban: string }\n'
        'permit saved {\n  action call bank.pay\n  when args.iban in payees\n  reason "Saved payees."\n}\n'
    )
    first = check([tmp_path / "p.charter"])
    assert first.policy is not None, first.diagnostics
    engine = Engine(first.policy)
    assert _decide(engine, "bank.pay", {"iban": "DE89370400440532013000"}).outcome is Outcome.ALLOW
    assert _decide(engine, "bank.pay", {"iban": "FR7630006000011234567890189"}).outcome is Outcome.DENY
    (tmp_path / "payees.yaml").write_text("payees: [FR7630006000011234567890189]\n")
    second = check([tmp_path / "p.charter"])
    assert second.policy is not None
    assert second.policy.revision != first.policy.revision
    assert (
        _decide(Engine(second.policy), "bank.pay", {"iban": "FR7630006000011234567890189"}).outcome
        is Outcome.ALLOW
    )


def test_an_error_inside_a_named_condition_fails_the_calling_rule_closed() -> None:
    engine = _engine()
    d = _decide(engine, "mail.send", {"to": [7], "body": ""})
    assert d.outcome is Outcome.DENY
    assert [f.where for f in d.failures] == ["rule internal-mail"]
    assert "all_colleagues(args.to)" in d.failures[0].error


def test_explain_shows_the_call_as_written() -> None:
    policy = charter.loads(POLICY)
    rule = next(r for r in policy.rules if r.id == "internal-mail")
    cond = rule.conditions[0]
    assert cond.text == "all_colleagues(args.to)"
    shown = cond.explain({"args": {"to": ["a@lumen.example"]}})
    assert shown[-1] == ("all_colleagues(args.to)", True)


def test_macro_variables_of_a_body_never_capture_an_argument() -> None:
    text = POLICY + (
        "condition any_in(v: string, xs: list of string) = xs.exists(a, a == v)\n"
        "tool t.x { arg a: string  arg xs: list of string }\n"
        'permit p {\n  action call t.x\n  when args.xs.all(a, any_in(a, ["k"]))\n  reason "r"\n}\n'
    )
    engine = _engine(text)
    assert _decide(engine, "t.x", {"a": "", "xs": ["k", "k"]}).outcome is Outcome.ALLOW
    assert _decide(engine, "t.x", {"a": "", "xs": ["k", "z"]}).outcome is Outcome.DENY


# ---- checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ('const payee-list = ["a"]\n', ["E207"]),
        ('const args = "x"\n', ["E207"]),
        ("condition size(x: string) = true\n", ["E207"]),
        ("condition ok(my-x: string) = true\n", ["E207"]),
        ('const a = "x"\nconst a = "y"\n', ["E202"]),
        ('const a = "x"\ncondition a() = true\n', ["E202"]),
        ("const n: int = 1.5\n", ["E303"]),
        ('const n: list of int = [1, "a"]\n', ["E303"]),
        ('const s: string = ["a"]\n', ["E303"]),
        ("const m: map of string = 1\n", ["E303"]),
        ("condition big() = args.amount > 1.0\n", ["E311"]),
        ("condition a(x: string) = b(x)\ncondition b(x: string) = a(x)\n", ["E203"]),
        ("condition self(x: int) = x > 0 && self(x - 1)\n", ["E203"]),
        ("condition n(x: int) = x + 1\n", ["E306"]),
        ('condition n(x: int) = x == "a"\n', ["E303"]),
        ("condition n(x: int) = y > 0\n", ["E302"]),
        ("condition n(x: int, x: int) = true\n", ["E202"]),
        ('const k = "x"\ncondition n(k: string) = true\n', ["E202"]),
        ("tool t { arg s: set of string }\n", ["E201"]),
    ],
)
def test_declaration_errors_have_stable_codes(text: str, codes: list[str]) -> None:
    got = [c for c in _codes(text) if not c.startswith("W")]
    assert got == codes


@pytest.mark.parametrize(
    ("call", "code"),
    [
        ("colleague(1)", "E303"),
        ("colleague()", "E303"),
        ('colleague("a", "b")', "E303"),
        ("coleague(args.to[0])", "E305"),
    ],
)
def test_call_sites_are_checked_against_the_declared_parameters(call: str, code: str) -> None:
    text = POLICY.replace("when all_colleagues(args.to)", f"when {call}")
    diags = [d for d in compile_text(text).diagnostics if d.is_error]
    assert [d.code.value for d in diags] == [code]
    if code == "E303":
        assert "colleague(addr: string)" in (diags[0].help or "")
    else:
        assert "colleague" in (diags[0].help or "")


def test_a_macro_variable_may_not_hide_a_root_the_body_reads() -> None:
    text = (
        "condition in_run(l: string) = l in run.labels\n"
        "tool t { arg xs: list of string }\n"
        'permit p {\n  action call t\n  when args.xs.all(run, in_run(run))\n  reason "r"\n}\n'
    )
    assert [c for c in _codes(text) if c.startswith("E")] == ["E303"]


def test_unused_constants_and_conditions_are_w508() -> None:
    text = 'const lonely = "x"\ncondition unused(x: int) = x > 0\npermit p {\n  action any\n  reason "r"\n}\n'
    diags = compile_text(text).diagnostics
    assert sorted(d.message for d in diags if d.code.value == "W508") == [
        "condition 'unused' is declared but nothing refers to it",
        "constant 'lonely' is declared but nothing refers to it",
    ]


def test_a_named_condition_that_reads_run_state_makes_the_policy_keep_it() -> None:
    text = (
        'condition tainted() = "untrusted" in run.labels\n'
        "tool t { arg x: string }\n"
        'forbid p {\n  action call t\n  when tainted()\n  reason "r"\n}\n'
    )
    result = compile_text(text)
    assert result.policy is not None
    assert result.policy.uses_run_state
    rule = result.policy.rules[0]
    assert rule.conditions[0].references == frozenset({"run.labels"})


# ---- editors -----------------------------------------------------------------------------------


def test_the_symbol_index_knows_constants_and_named_conditions() -> None:
    from charter.editing.symbols import SymbolIndex, SymbolKind

    module = parse_text(POLICY, "p.charter").module
    assert module is not None
    ix = SymbolIndex.build([module], {"p.charter": POLICY})
    (decl,) = ix.declarations((SymbolKind.CONDITION, "colleague"))
    assert decl.span.line == 7
    # called from the body of all_colleagues (a named condition refers to another)
    (ref,) = ix.references((SymbolKind.CONDITION, "colleague"))
    assert ref.span.line == 9
    assert [o.span.line for o in ix.references((SymbolKind.CONSTANT, "org_domain"))] == [7]
    assert [o.span.line for o in ix.references((SymbolKind.CONSTANT, "members"))] == [21]
    assert [o.span.line for o in ix.references((SymbolKind.CONDITION, "all_colleagues"))] == [16]


def test_a_list_constant_inside_a_body_that_another_condition_calls() -> None:
    # Regression: preparing a body that holds an inlined list constant walked into the list.
    text = (
        'const members: set of string = ["amir", "beth"]\n'
        "condition known(n: string) = n in members\n"
        "condition all_known(xs: list of string) = xs.all(x, known(x))\n"
        "tool t { arg xs: list of string }\n"
        'permit p {\n  action call t\n  when all_known(args.xs)\n  reason "r"\n}\n'
    )
    engine = _engine(text)
    assert _decide(engine, "t", {"xs": ["amir", "beth"]}).outcome is Outcome.ALLOW
    assert _decide(engine, "t", {"xs": ["amir", "zed"]}).outcome is Outcome.DENY
