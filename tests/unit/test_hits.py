"""A rule whose condition failed reads as failed wherever a decision is shown (issue 18).

Without ``--explain``, ``DENY  permit a: Readers read.`` would say the permit denied the action.
Every view words deciding rules through ``charter.hits``: a failed rule names the condition, the
error and the failure mode it took.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

import charter
from charter.cli.main import cli
from charter.demo.render import Out
from charter.engine.decision import RuleHit
from charter.enums import Outcome
from charter.guard import GuardError
from charter.hits import decision_reasons, failed, hit_line, hit_tag, reason_text, reasons_text
from charter.trace.log import TraceLog

POLICY = """
tool t {}
permit a {
  action call t
  when args.y == "z"
  reason "Readers read."
}
"""

REQUEST = {"actor": {"id": "ag"}, "action": {"target": "t", "args": {"x": "1"}}}

#: the line every view shows for the failed permit
FAILED = "permit a — condition args.y == \"z\" failed: no such key: 'y' (on error deny)"


@pytest.fixture()
def decision() -> charter.Decision:
    return charter.Engine(charter.loads(POLICY)).decide(REQUEST)


def test_the_failed_permit_is_the_deciding_hit(decision: charter.Decision) -> None:
    # the premise: the engine lists the failed permit as the deciding rule, with its error
    assert decision.outcome is Outcome.DENY
    (hit,) = decision.rules
    assert (hit.id, hit.kind, hit.effect, hit.reason) == ("a", "permit", Outcome.DENY, "Readers read.")
    assert hit.error == "condition 'args.y == \"z\"': no such key: 'y'"


def test_hit_wording_on_objects_and_records(decision: charter.Decision) -> None:
    (hit,) = decision.rules
    for h in (hit, hit.to_dict()):
        assert failed(h)
        assert hit_line(h) == FAILED
        assert hit_tag(h) == "a (condition failed)"
        assert reason_text(h) == "rule a: condition args.y == \"z\" failed: no such key: 'y' (on error deny)"
    assert decision_reasons(decision) == reason_text(hit)


def test_a_rule_that_held_reads_as_before() -> None:
    hit = RuleHit("big-payments", "require approval", Outcome.REQUIRE_APPROVAL, "Needs treasury.")
    assert not failed(hit)
    assert hit_line(hit) == "require approval big-payments: Needs treasury."
    assert hit_tag(hit) == "big-payments"
    assert reason_text(hit) == "Needs treasury."
    assert hit_line(RuleHit("p", "permit", Outcome.ALLOW, "")) == "permit p: (no reason given)"


def test_other_errors_and_failure_modes_are_named() -> None:
    # an error the engine does not word as a condition error, and a failure mode other than deny
    hit = RuleHit("cap", "budget", Outcome.REQUIRE_APPROVAL, "Cap.", error="evaluation cost limit exceeded")
    assert hit_line(hit) == (
        "budget cap — condition failed: evaluation cost limit exceeded (on error require approval)"
    )


def test_reasons_leave_out_shadow_hits_and_fall_back() -> None:
    shadow = RuleHit("s", "forbid", Outcome.DENY, "Would deny.", shadow=True)
    assert reasons_text([shadow]) == ""
    assert reasons_text([shadow], default_deny=True) == "no rule permits it (default deny)"
    assert reasons_text([], fallback="deny") == "deny"


def test_cli_eval_says_the_condition_failed(tmp_path: Path) -> None:
    (tmp_path / "p.charter").write_text(POLICY)
    (tmp_path / "r.json").write_text(json.dumps(REQUEST))
    res = CliRunner().invoke(
        cli, ["--color", "never", "eval", str(tmp_path / "p.charter"), "--request", str(tmp_path / "r.json")]
    )
    assert res.exit_code == 0
    assert res.output == f"DENY\n  {FAILED}\n"


def test_trace_list_marks_the_failed_rule(tmp_path: Path) -> None:
    path = str(tmp_path / "trace.db")
    log = TraceLog(path)
    engine = charter.Engine(charter.loads(POLICY), trace=log)
    d = engine.decide(REQUEST)
    log.close()
    out = CliRunner().invoke(cli, ["trace", "list", "--trace", path]).output
    (line,) = [ln for ln in out.splitlines() if d.id in ln]
    assert line.endswith("call t  a (condition failed)")
    story = CliRunner().invoke(cli, ["trace", "explain", d.id, "--trace", path]).output
    assert "could not be evaluated" in story and "failed closed" in story


def test_demo_rendering_says_the_condition_failed(decision: charter.Decision) -> None:
    buf = io.StringIO()
    Out(Console(file=buf, width=200, no_color=True)).decision(None, "ag", "t", {}, decision, None, True)
    assert FAILED in buf.getvalue()
    assert "a: Readers read." not in buf.getvalue()


def test_guard_message_says_the_condition_failed(decision: charter.Decision) -> None:
    err = GuardError(decision)
    assert str(err) == "deny: rule a: condition args.y == \"z\" failed: no such key: 'y' (on error deny)"
    assert err.reasons == [reason_text(decision.rules[0])]
