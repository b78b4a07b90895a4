"""Replay of a recorded trace under a candidate policy."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import charter
from charter.cli.main import cli
from charter.trace import TraceLog

OLD = """
units USD
tool read {}
tool pay { arg amount: double }
permit reads { action call read  reason "r" }
permit pays { action call pay  reason "p" }
forbid big { action call pay
  when args.amount > 100.0
  reason "no big payments" }
budget b { scope agent  limit 10 USD  reason "ten" }
"""


def _record(tmp: Path) -> Path:
    log = TraceLog(tmp / "t.db")
    e = charter.Engine(charter.loads(OLD), trace=log, clock=lambda: 1_790_000_000.0)
    e.decide({"actor": {"id": "a"}, "action": {"target": "read"}})
    e.decide({"actor": {"id": "a"}, "action": {"target": "pay", "args": {"amount": 500.0}}})
    d = e.decide(
        {"actor": {"id": "a"}, "action": {"target": "pay", "args": {"amount": 5.0}}, "cost": {"USD": 8}}
    )
    e.settle(d.id, actual_cost={"USD": 8})
    # budget already used 8: this one would exceed 10
    e.decide({"actor": {"id": "a"}, "action": {"target": "pay", "args": {"amount": 5.0}}, "cost": {"USD": 8}})
    log.close()
    return tmp / "t.db"


def test_replay_reports_what_a_candidate_loosens(tmp_path: Path) -> None:
    trace = _record(tmp_path)
    (tmp_path / "new.charter").write_text(OLD.replace("args.amount > 100.0", "args.amount > 1000.0"))
    res = CliRunner().invoke(
        cli,
        [
            "replay",
            str(tmp_path / "new.charter"),
            "--trace",
            str(trace),
            "--format",
            "json",
            "--fail-on",
            "widen",
        ],
    )
    data = json.loads(res.output)
    assert res.exit_code == 1
    assert data["replayed"] == 4 and data["changed"] == 1 and data["widened"] == 1
    assert data["transitions"] == {"deny -> allow": 1}
    change = data["changes"][0]
    assert (change["before"], change["after"], change["rules_before"]) == ("deny", "allow", ["big"])


def test_replay_uses_the_state_each_decision_saw(tmp_path: Path) -> None:
    trace = _record(tmp_path)
    # same policy: nothing changes, including the budget that was already used when it denied
    (tmp_path / "same.charter").write_text(OLD)
    res = CliRunner().invoke(cli, ["replay", str(tmp_path / "same.charter"), "--trace", str(trace)])
    assert res.exit_code == 0 and "4 unchanged, 0 changed" in res.output
    # a bigger budget turns the last decision into an allow
    (tmp_path / "rich.charter").write_text(OLD.replace("limit 10 USD", "limit 100 USD"))
    res = CliRunner().invoke(cli, ["replay", str(tmp_path / "rich.charter"), "--trace", str(trace)])
    assert "deny -> allow: 1" in res.output and "LOOSER" in res.output
