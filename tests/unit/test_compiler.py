"""Compiler stages: resolve, clause checks, typecheck diagnostics, narrowing, stage stops."""

from __future__ import annotations

from pathlib import Path

import pytest

import charter
from charter.compiler.pipeline import compile_paths, compile_text
from charter.diagnostics import CharterError, render_all

BASE = """
policy t
units USD
roles research, payments
attribute clearance: int
agent r1 { role research  clearance 1 }
group treasury { members alice, bob }
tool kb.read { category read  tags internal }
tool pay { category payment  arg amount: double }
"""


def rendered(text: str) -> str:
    res = compile_text(BASE + text, "t.charter")
    return render_all(res.diagnostics, res.sources)


def test_clean_policy_compiles() -> None:
    res = compile_text(
        BASE + 'permit p { actor role research  action call kb.read  reason "r" }\n'
        'permit q { action call pay reason "q" }',
        "t.charter",
    )
    assert res.errors == [] and res.policy is not None
    assert [r.id for r in res.policy.rules] == ["p", "q"]


def test_unknown_role_with_did_you_mean() -> None:
    out = rendered('permit p {\n  actor role reserch\n  action call kb.read\n  reason "r"\n}\n')
    assert out == (
        "t.charter:11:14: E201 unknown role 'reserch'\n"
        "  11 |   actor role reserch\n"
        "     |              ^^^^^^^\n"
        "  = help: did you mean 'research'?"
    )


def test_unknown_tool_and_tag() -> None:
    out = rendered(
        'forbid f { action call tagged internl  reason "r" }\npermit p { action call kb.raed  reason "r" }\n'
    )
    assert "E201 unknown tag 'internl'" in out and "did you mean 'internal'?" in out
    assert "E201 unknown tool 'kb.raed'" in out and "did you mean 'kb.read'?" in out


def test_duplicate_rule_id() -> None:
    out = rendered('permit p { reason "a" }\npermit p { reason "b" }\n')
    assert "t.charter:11:8: E202 rule 'p' is declared twice" in out
    assert "= help: the first declaration is at t.charter:10:8" in out


def test_clause_not_allowed_duplicate_and_missing() -> None:
    out = rendered('permit p { quorum 2  reason "a" }\n')
    assert "E106 'quorum' is not allowed in a permit rule" in out
    out = rendered('permit p { reason "a"  reason "b" }\n')
    assert "E107 'reason' appears twice in rule 'p'" in out
    out = rendered('require approval a { action call pay  reason "x" }\n')
    assert "E108 require approval rule 'a' needs an 'approvers' clause" in out


def test_cel_unknown_field_is_located_inside_the_condition() -> None:
    out = rendered('permit p {\n  action call pay\n  when actor.clearence > 1\n  reason "r"\n}\n')
    assert out == (
        "t.charter:12:8: E302 unknown field 'clearence' of actor\n"
        "  12 |   when actor.clearence > 1\n"
        "     |        ^^^^^^^^^^^^^^^\n"
        "  = help: did you mean 'clearance'?"
    )


def test_cel_type_error_double_vs_int() -> None:
    out = rendered('permit p { action call pay\n  when args.amount > 10000\n  reason "r" }\n')
    assert "E303" in out and "10000" in out


def test_stage_stop_after_resolve_skips_typecheck() -> None:
    res = compile_text(
        BASE + 'permit p { action call pay\n when args.nope > 1\n reason "r" }',
        "t.charter",
        stop_after="resolve",
    )
    assert res.errors == [] and res.stage == "resolve"
    full = compile_text(BASE + 'permit p { action call pay\n when args.nope > 1\n reason "r" }', "t.charter")
    assert [d.code.value for d in full.errors] == ["E302"]


def test_narrowing_module_rejects_permit(tmp_path: Path) -> None:
    (tmp_path / "base.charter").write_text(BASE + 'permit p { action call kb.read reason "r" }\n')
    (tmp_path / "child.charter").write_text(
        'policy child extends t for agent r1\npermit wider { action call pay  reason "x" }\n'
        'forbid ok { action call pay  on error ignore  reason "y" }\n'
    )
    res = compile_paths([tmp_path])
    codes = sorted(d.code.value for d in res.errors)
    assert codes == ["E401", "E404"]
    msg = next(d for d in res.errors if d.code.value == "E401").message
    assert msg == "permit 'wider' would widen what policy 't' allows"


def test_narrowing_module_applies_only_to_its_subject(tmp_path: Path) -> None:
    (tmp_path / "base.charter").write_text(
        BASE + 'agent r2 { role research }\npermit p { actor role research action call kb.read reason "r" }\n'
    )
    (tmp_path / "child.charter").write_text(
        'policy child extends t for agent r1\nforbid no-kb { action call kb.read  reason "x" }\n'
    )
    engine = charter.Engine(charter.load(tmp_path))
    assert engine.decide({"actor": {"id": "r1"}, "action": {"target": "kb.read"}}).outcome.value == "deny"
    assert engine.decide({"actor": {"id": "r2"}, "action": {"target": "kb.read"}}).outcome.value == "allow"


def test_include_cycle_and_missing(tmp_path: Path) -> None:
    (tmp_path / "a.charter").write_text('include "b.charter"\n')
    (tmp_path / "b.charter").write_text('include "a.charter"\ninclude "nope.charter"\n')
    res = compile_paths([tmp_path / "a.charter"])
    msgs = sorted(f"{d.code.value} {d.message}" for d in res.errors)
    assert any(m.startswith("E203 include cycle:") for m in msgs)
    assert any(m.startswith("E204 included file not found:") and "nope.charter" in m for m in msgs)


def test_empty_directory_and_missing_file(tmp_path: Path) -> None:
    res = compile_paths([tmp_path])
    assert [d.code.value for d in res.errors] == ["E005"]
    res = compile_paths([tmp_path / "nope.charter"])
    assert [d.code.value for d in res.errors] == ["E204"]


def test_load_raises_with_diagnostics(tmp_path: Path) -> None:
    p = tmp_path / "x.charter"
    p.write_text("permit {\n")
    with pytest.raises(CharterError) as info:
        charter.load(p)
    assert info.value.diagnostics[0].code.value == "E101"


def test_revision_is_a_content_hash(tmp_path: Path) -> None:
    p = tmp_path / "x.charter"
    p.write_text(BASE)
    r1 = charter.load(p).revision
    assert charter.load(p).revision == r1
    p.write_text(BASE + "\n# changed\n")
    assert charter.load(p).revision != r1


def test_analysis_warnings() -> None:
    res = compile_text(
        BASE + 'forbid all-pay { action call pay  reason "no" }\n'
        'permit pay-ok { action call pay  reason "yes" }\n'
        'permit never { action call kb.read\n when false\n reason "x" }\n'
        'require approval a { action call pay  approvers treasury  quorum 3  reason "q" }\n'
        "permit silent { action call kb.read }\n",
        "t.charter",
    )
    got = sorted((d.code.value, d.message) for d in res.warnings)
    assert ("W501", "rule 'never' can never fire") in got
    assert ("W502", "permit 'pay-ok' can never allow anything: forbid 'all-pay' always applies") in got
    assert ("W504", "approval 'a' needs 3 approvers but group 'treasury' has 2") in got
    assert ("W506", "rule 'silent' has no reason") in got


def test_examples_are_clean(root: Path) -> None:
    res = compile_paths([root / "policies"])
    assert res.diagnostics == []


def test_many_warnings_never_become_an_error() -> None:
    rules = "".join(f"permit p{i} {{ action call kb.read }}\n" for i in range(250))
    res = compile_text(BASE + rules, "t.charter")
    assert res.errors == [] and res.policy is not None
    # 250 W506 + 3 W508 (BASE declares a unit, a role and a group these rules do not use) + W505
    assert res.diagnostics[-1].message == "54 more diagnostics not shown"
