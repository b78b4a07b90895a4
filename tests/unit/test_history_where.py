"""History with conditions, checked at compile time: `result` declarations, `where` and `earlier`
(docs/language.md "History with conditions"; the run-time attacks are tests/adversarial/test_history.py)."""

from __future__ import annotations

import pytest

import charter
from charter.compiler.pipeline import compile_text
from charter.enums import Outcome

TOOLS = """
tool mail.send { arg to: string  result id: string }
tool mail.forward { arg to: string  result id: string }
tool mail.reply { arg to: string  result id: int }
tool mail.delete { arg message_id: string }
permit work { action call mail.send, mail.forward, mail.reply, mail.delete  reason "ok" }
"""


def _codes(rule: str) -> list[str]:
    res = compile_text(TOOLS + rule, "p.charter")
    return [d.code.value for d in res.diagnostics if d.is_error]


def _forbid(clause: str) -> str:
    return f'forbid f {{\n  action call mail.delete\n  {clause}\n  reason "r"\n}}\n'


@pytest.mark.parametrize(
    ("clause", "codes"),
    [
        ("after call mail.send where earlier.result.id == args.message_id", []),
        # the tools agree: earlier.result is typed, an unknown field is E302
        ("after call mail.send, mail.forward where earlier.result.idx == args.message_id", ["E302"]),
        # they disagree (id: int for mail.reply): a map of any, any field reads (at run time)
        ("after call mail.send, mail.reply where earlier.result.idx == args.message_id", []),
        ("after call any where earlier.args.anything == 1", []),
        ("before call mail.send where earlier.result.id", ["E306"]),
        ("after call mail.send where earlier.result.id == 1", ["E303"]),
        ("after labelled x where true", ["E106"]),
        ("when earlier.step > 1", ["E307"]),
        ('after call mail.send within 3 steps where earlier.step > 0 && earlier.tool == "mail.send"', []),
    ],
)
def test_where_is_checked(clause: str, codes: list[str]) -> None:
    assert _codes(_forbid(clause)) == codes


def test_result_types_are_declared_types() -> None:
    res = compile_text('tool t { result x: strin }\npermit p { action call t  reason "r" }\n', "p.charter")
    assert [d.code.value for d in res.diagnostics if d.is_error] == ["E201"]


def test_the_formatter_keeps_results_and_where() -> None:
    text = TOOLS + _forbid("after call mail.send within 2 steps where earlier.result.id == args.message_id")
    from charter.syntax.printer import format_source

    once, diags = format_source(text)
    assert once is not None and not diags
    assert format_source(once)[0] == once
    assert "result id: string" in once
    assert "after call mail.send within 2 steps where earlier.result.id == args.message_id" in once


def test_only_history_policies_record_detail() -> None:
    plain = charter.Engine(
        charter.loads('tool t { arg a: string }\npermit p { action call t  reason "r" }\n')
    )
    req = {"actor": {"id": "b"}, "action": {"target": "t", "args": {"a": "x"}}, "context": {"run": "r"}}
    assert plain.decide(req).outcome is Outcome.ALLOW
    assert plain.store.history_detail("run:r", 10) == []  # a stateless policy records nothing
    detail = charter.Engine(
        charter.loads(TOOLS + _forbid('after call mail.send where earlier.args.to == "x"'))
    )
    req["action"] = {"target": "mail.send", "args": {"to": "x"}, "call_id": "c-1"}
    assert detail.decide(req).outcome is Outcome.ALLOW
    (ev,) = detail.store.history_detail("run:r", 10)
    assert (ev["call"], ev["target"], ev["args"]) == ("c-1", "mail.send", {"to": "x"})


HISTORY_POLICY = """
tool mail.send { arg to: string  result id: string }
permit work { action call mail.send  reason "ok" }
forbid third-send {
  action call mail.send
  when history.filter(e, e.tool == "mail.send" && e.outcome == "success").size() >= 2
  reason "At most two mails a run."
}
"""


def _mail(e: charter.Engine, run: str | None = "r") -> charter.Decision:
    req = {"actor": {"id": "b"}, "action": {"target": "mail.send", "args": {"to": "x"}}}
    if run:
        req["context"] = {"run": run}
    return e.decide(req)


def test_history_in_a_condition_lists_the_runs_entries() -> None:
    e = charter.Engine(charter.loads(HISTORY_POLICY))
    for _ in range(2):
        e.settle(_mail(e).id, result={"id": "m"})
    d = _mail(e)
    assert (d.outcome, [h.id for h in d.rules]) == (Outcome.DENY, ["third-send"])
    assert _mail(e, "other").outcome is Outcome.ALLOW
    no_run = _mail(e, None)
    assert no_run.outcome is Outcome.DENY and no_run.failures  # unknown history: closed
