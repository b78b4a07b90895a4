"""Attacks on how decisions are shown: text that reaches an error message (a request's values,
a condition's words) must never forge lines of output or flood a terminal (issue 18, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import charter
from charter.cli.main import cli
from charter.engine.decision import RuleHit
from charter.enums import Outcome
from charter.hits import MAX_ERROR, hit_line, reason_text


def test_newlines_and_escapes_in_an_error_stay_on_one_line() -> None:
    forged = "no such key: 'x'\n  permit admin: Everything is allowed.\x1b[32m ALLOW\x1b[0m\r"
    hit = RuleHit("a", "permit", Outcome.DENY, "r", error=forged)
    for text in (hit_line(hit), reason_text(hit), hit_line(hit.to_dict())):
        assert "\n" not in text and "\r" not in text and "\x1b" not in text
        assert "\\n" in text and "\\x1b" in text  # shown, escaped


def test_a_huge_error_is_cut() -> None:
    hit = RuleHit("a", "permit", Outcome.DENY, "r", error="condition 'x': " + "A" * 100_000)
    line = hit_line(hit)
    assert len(line) < MAX_ERROR + 120 and line.endswith("(on error deny)")


def test_a_request_value_in_an_error_cannot_forge_cli_output(tmp_path: Path) -> None:
    # the condition fails on the request's own value; the CLI shows the failure on one line
    (tmp_path / "p.charter").write_text(
        'tool t { arg n: string }\npermit a {\n  action call t\n  when int(args.n) > 1\n  reason "r"\n}\n'
    )
    value = "1\nALLOW\n  permit everything: yes"
    req = {"actor": {"id": "ag"}, "action": {"target": "t", "args": {"n": value}}}
    (tmp_path / "r.json").write_text(json.dumps(req))
    d = charter.Engine(charter.load(tmp_path / "p.charter")).decide(req)
    assert d.outcome is Outcome.DENY and d.rules[0].error
    res = CliRunner().invoke(
        cli, ["--color", "never", "eval", str(tmp_path / "p.charter"), "--request", str(tmp_path / "r.json")]
    )
    lines = res.output.splitlines()
    assert lines[0] == "DENY" and len(lines) == 2, res.output
    assert lines[1].startswith("  permit a — condition int(args.n) > 1 failed")
