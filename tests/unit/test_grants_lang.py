"""The grant declaration: parse, fmt round trip, checks (E302, E306, E307, E106, E108, E303, W501)."""

from __future__ import annotations

import pytest

from charter.compiler.pipeline import compile_text
from charter.engine.engine import Engine
from charter.syntax.parser import parse_text
from charter.syntax.printer import format_text

BASE = """
tool mail.send {
  arg to: list of string
}
tool files.read {
  arg path: string
}
"""

GRANT = """
grant send-mail {
  action call mail.send
  param to: set of string = []  # addresses the planner resolved
  param private: bool = false
  param count: int
  covers args.to.all(r, r in grant.to)
  bound grant.to.size() > 0 &&
    grant.to.size() <= 20
  uses grant.count
  reason "Mail the user asked for."
}
"""


def _codes(text: str) -> list[tuple[str, str]]:
    r = compile_text(BASE + text)
    return [(d.code.value, d.message) for d in r.diagnostics if d.code.value not in ("W505", "W506", "W508")]


def test_parse_and_fmt_round_trip() -> None:
    text = BASE + GRANT
    formatted = format_text(text)
    assert formatted is not None
    assert format_text(formatted) == formatted
    first, again = parse_text(text).module, parse_text(formatted).module
    assert first == again
    assert "param to: set of string = []  # addresses the planner resolved" in formatted


def test_compiles_to_a_grant_kind() -> None:
    r = compile_text(BASE + GRANT)
    assert r.policy is not None, r.errors
    kind = r.policy.grant_kinds["send-mail"]
    assert [p.name for p in kind.params] == ["to", "private", "count"]
    assert [p.required for p in kind.params] == [False, False, True]
    assert kind.uses is not None and len(kind.covers) == 1 and len(kind.bounds) == 1
    assert r.policy.uses_run_state  # a policy with grants reads every run's state


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        (
            'permit p {\n  action call mail.send\n  when granted("send-mial")\n}\n',
            "E302",
            "unknown grant kind",
        ),
        ("permit p {\n  action call mail.send\n  when granted(tool.name)\n}\n", "E302", "text literal"),
        ("grant g {\n  action call mail.send\n  bound args.to.size() > 0\n}\n", "E307", "cannot read 'args'"),
        ("grant g {\n  action call mail.send\n  covers 1 + 2\n}\n", "E306", "true or false"),
        ("grant g {\n  action call mail.send\n  covers grant.nope == 1\n}\n", "E302", "nope"),
        ("grant g {\n  action call mail.send\n  when true\n}\n", "E106", "not allowed in a grant"),
        ("grant g {\n  param x: int = 1\n}\n", "E108", "needs an 'action'"),
        ("grant g {\n  action call mail.send\n  uses 1.5\n}\n", "E303", "whole number"),
        ('grant g {\n  action call mail.send\n  covers granted("g")\n}\n', "E307", "granted()"),
        ('grant g {\n  action call mail.send\n  param n: int = "x"\n}\n', "E303", "default"),
        ("permit p {\n  action call mail.send\n  param x: int\n}\n", "E106", "'param' is not allowed"),
    ],
)
def test_checks(text: str, code: str, words: str) -> None:
    found = _codes(GRANT + text)
    assert any(c == code and words in m for c, m in found), found


def test_did_you_mean() -> None:
    r = compile_text(BASE + GRANT + 'permit p {\n  action call mail.send\n  when granted("send-mial")\n}\n')
    assert any(d.help == "did you mean 'send-mail'?" for d in r.errors)


def test_w501_when_the_rule_cannot_meet_the_kind() -> None:
    found = _codes(
        GRANT + 'permit p {\n  action call files.read\n  when granted("send-mail")\n  reason "x"\n}\n'
    )
    assert [c for c, _ in found] == ["W501"]


def test_run_grants_in_conditions() -> None:
    text = GRANT + (
        "permit p {\n  action call mail.send\n"
        '  when run.grants.exists(g, g.kind == "send-mail" && g.uses_left > 0 && !g.private)\n'
        '  reason "x"\n}\n'
    )
    r = compile_text(BASE + text)
    assert r.policy is not None, r.errors
    e = Engine(r.policy)
    req = {
        "actor": {"id": "a"},
        "action": {"kind": "call", "target": "mail.send", "args": {"to": ["x"]}},
        "context": {"run": "r1"},
    }
    assert not e.decide(req).allowed  # no grants yet (and this records a step)
    e2 = Engine(r.policy)
    e2.begin_run("r1", actor="a", grants=[{"kind": "send-mail", "to": ["x"], "count": 1}])
    assert e2.decide(req).allowed


def test_explain_says_which_grant_covered_it() -> None:
    from charter.engine.explain import explain

    r = compile_text(BASE + GRANT + 'permit p {\n  action call mail.send\n  when granted("send-mail")\n}\n')
    assert r.policy is not None
    e = Engine(r.policy)
    e.begin_run("r1", actor="a", grants=[{"kind": "send-mail", "to": ["x"], "count": 2}])

    def req(to: str) -> dict[str, object]:
        return {
            "actor": {"id": "a"},
            "action": {"kind": "call", "target": "mail.send", "args": {"to": [to]}},
            "context": {"run": "r1"},
        }

    lines = explain(e.decide(req("x")).to_dict(), req("x"))
    assert "It was covered by grant g1 (send-mail) of run r1." in lines
    assert "It used one use of grant g1 (1 of 2 used)." in lines
    lines = explain(e.decide(req("evil")).to_dict(), req("evil"))
    assert "No grant of run r1 covers it:" in lines


def test_covers_can_read_sources() -> None:
    """No from_origin() yet: a grant's covers names the sources it trusts through sources()."""
    text = """
grant reply {
  action call mail.send
  param from_kinds: set of string = []
  covers args.to.all(r, sources(r).exists(s, s.kind in grant.from_kinds))
}
permit p {
  action call mail.send
  when granted("reply")
  reason "x"
}
"""
    r = compile_text(BASE + text)
    assert r.policy is not None, r.errors
    e = Engine(r.policy)
    e.begin_run("r1", actor="a", grants=[{"kind": "reply", "from_kinds": ["user"]}, {"kind": "reply"}])

    def req(src: str | None) -> dict[str, object]:
        action: dict[str, object] = {"kind": "call", "target": "mail.send", "args": {"to": ["x@y"]}}
        if src is not None:
            action["provenance"] = {"to": [{"sources": [{"from": src}]}]}
        return {"actor": {"id": "a"}, "action": action, "context": {"run": "r1"}}

    assert not e.decide(req(None)).allowed  # no provenance: closed
    assert not e.decide(req("agent")).allowed
    d = e.decide(req("user"))
    assert d.allowed and [g["covers"] for g in d.to_dict()["grants"]] == [True, False]


def test_editor_index_and_tokens() -> None:
    from charter.editing import SymbolKind
    from charter.editing.symbols import SymbolIndex
    from charter.editing.tokens import TokenType, tokens

    text = BASE + GRANT
    module = parse_text(text, "p.charter").module
    assert module is not None
    ix = SymbolIndex.build([module], {"p.charter": text})
    (decl,) = ix.declarations((SymbolKind.GRANT, "send-mail"))
    assert decl.span.line == text[: text.index("send-mail")].count("\n") + 1
    by_pos = {(t.line, t.column): t.type for t in tokens(text, module, ix, "p.charter")}
    line = decl.span.line
    assert by_pos[(line, 1)] is TokenType.KEYWORD  # grant
    assert by_pos[(line, decl.span.column)] is TokenType.STRUCT
