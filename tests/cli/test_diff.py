"""`charter diff`: real edits of the example policies are reported as widening or narrowing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return res.exit_code, res.output


@pytest.fixture()
def edited(tmp_path: Path) -> Path:
    dst = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", dst)
    return dst


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def changes(old: Path, new: Path, *extra: str) -> tuple[int, list[dict]]:
    code, out = run("diff", str(old), str(new), "--format", "json", *extra)
    return code, json.loads(out)["changes"]


def test_no_change(edited: Path) -> None:
    code, out = run("diff", str(ROOT / "policies"), str(edited), "--fail-on", "widen")
    assert code == 0 and "no semantic change" in out


def test_raising_an_approval_threshold_widens(edited: Path) -> None:
    edit(edited / "gates.charter", "when args.amount > 10000.0", "when args.amount > 50000.0")
    code, ch = changes(ROOT / "policies", edited, "--fail-on", "widen")
    assert code == 1
    hit = [c for c in ch if c["direction"] == "widen" and "payments.transfer(amount=10001.0" in c["subject"]]
    assert hit and hit[0]["old"] == "require_approval" and hit[0]["new"] == "allow"


def test_dropping_a_forbid_widens_and_adding_one_narrows(edited: Path) -> None:
    perms = edited / "permissions.charter"
    edit(perms, "forbid research-never-writes-kb", "forbid research-never-writes-kb-x")
    edit(
        perms,
        "actor role research\n  action call kb.write",
        "actor role research\n  action call kb.write\n  when false",
    )
    _, ch = changes(ROOT / "policies", edited)
    removed = [c for c in ch if c["kind"] == "rule" and c["subject"] == "research-never-writes-kb"]
    assert removed and removed[0]["direction"] == "widen"
    _, back = changes(edited, ROOT / "policies", "--fail-on", "widen")
    assert any(c["kind"] == "rule" and c["direction"] == "narrow" for c in back)


def test_budget_rate_and_tripwire_limits(edited: Path) -> None:
    edit(edited / "spend.charter", "limit 50 USD per day", "limit 80 USD per day")
    edit(edited / "spend.charter", "limit 30 per 1m", "limit 10 per 1m")
    edit(edited / "runaway.charter", "more than 5 times within 2m", "more than 9 times within 2m")
    _, ch = changes(ROOT / "policies", edited)
    got = {(c["kind"], c["subject"], c["direction"]) for c in ch}
    assert ("budget", "agent-daily-paid-apis", "widen") in got
    assert ("rate", "search-rate", "narrow") in got
    assert ("tripwire", "same-call-loop", "widen") in got


def test_new_permit_widens_delegation_and_github_format(edited: Path) -> None:
    (edited / "extra.charter").write_text(
        "policy extra\npermit coding-delegates {\n  actor role coding\n  action delegate any\n"
        '  reason "The coding agent may hand work to anyone."\n}\n'
    )
    code, out = run("diff", str(ROOT / "policies"), str(edited), "--format", "github", "--fail-on", "widen")
    assert code == 1
    assert "::warning title=charter diff::widens decision coding-agent delegate to payments-agent" in out
