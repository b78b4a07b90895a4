"""`charter test`: the example organisation's tests, failures, load errors, formats and coverage."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from charter.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]

POLICY = """
policy mini
units USD
roles ops
agent bot { role ops }
group leads { members grace }
tool read {}
tool pay { arg amount: double }
permit ops-read { actor role ops  action call read  reason "ops read" }
permit ops-pay { actor role ops  action call pay  reason "ops pay" }
require approval big-pay {
  action call pay
  when args.amount > 100.0 && args.amount < 1000000.0
  approvers leads
  expires after 1h
  reason "big payments need a lead"
}
"""


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return res.exit_code, res.output


def write(tmp: Path, tests: str, name: str = "mini_test.yaml") -> Path:
    (tmp / "mini.charter").write_text(POLICY)
    (tmp / name).write_text(tests)
    return tmp / name


def test_example_policies_pass_with_90_percent_rule_coverage() -> None:
    code, out = run("test", "--coverage", "--threshold", "90", str(ROOT / "policies"))
    assert code == 0, out
    assert "0 failed, 0 errors" in out


def test_security_examples_pass_fire_every_rule_and_check_strict() -> None:
    # examples/security: the agent-security boundaries (one directory per scenario, each with its
    # *_test.yaml of allowed, denied, approval and attack cases)
    security = ROOT / "examples" / "security"
    code, out = run("test", "--coverage", "--threshold", "100", str(security))
    assert code == 0, out
    assert "0 failed, 0 errors" in out
    for scenario in sorted(p for p in security.iterdir() if p.is_dir()):
        code, out = run("check", "--strict", str(scenario))
        assert code == 0, out


def test_example_policies_json_coverage_figures() -> None:
    code, out = run("test", "--format", "json", "--coverage", str(ROOT / "policies"))
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["failed"] == 0
    cov = data["coverage"][0]
    assert cov["rule_percent"] >= 90 and cov["rules"] == len(cov["items"])


def test_failures_exit_1_and_name_the_expectation(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
tests:
  - name: wrong outcome
    request: {actor: bot, call: pay, args: {amount: 500.0}}
    expect: {outcome: allow}
  - name: right outcome
    request: {actor: bot, call: pay, args: {amount: 5.0}}
    expect: {outcome: allow, rules: [ops-pay]}
""",
    )
    code, out = run("test", str(tmp_path))
    assert code == 1
    assert "FAIL" in out and "wrong outcome" in out
    why = "require approval big-pay: big payments need a lead"
    assert f"outcome: expected allow, got require_approval ({why})" in out
    assert "right outcome" not in out
    code, out = run("test", "--run", "^right", str(tmp_path))
    assert code == 0 and "1 case" in out


def test_scenario_with_approval_and_timeout(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
scenarios:
  - name: approved, then used once
    defaults: {actor: bot, call: pay, args: {amount: 500.0}}
    steps:
      - decide: {}
        expect: {outcome: require_approval, obligations: {approvals: [{group: leads}]}}
      - approve: {as: bob}
        expect: {error: not a member}
      - approve: {as: grace}
        expect: {status: approved}
      - decide: {approval: last}
        expect: {outcome: allow, rules: ["approval:*"]}
      - decide: {approval: last}
        expect: {outcome: deny}
  - name: timed out
    defaults: {actor: bot, call: pay, args: {amount: 500.0}}
    steps:
      - decide: {}
      - advance: 2h
      - status: {approval: last}
        expect: {status: expired}
      - approve: {as: grace}
        expect: {error: expired}
""",
    )
    code, out = run("test", "-v", "--coverage", str(tmp_path))
    assert code == 0, out
    assert "PASS" in out and "approved, then used once" in out
    # the upper bound of big-pay's condition was never false: reported as a gap
    assert "args.amount < 1000000.0: never false" in out


def test_threshold_fails_under_coverage(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
tests:
  - name: read
    request: {actor: bot, call: read}
    expect: {outcome: allow}
""",
    )
    code, out = run("test", "--threshold", "90", str(tmp_path))
    assert code == 1 and "rules: 1/3 fired (33.3 %)" in out


def test_load_errors_exit_2(tmp_path: Path) -> None:
    write(tmp_path, "tests: [{name: x, request: {actor: bot, call: read}, expect: {outcome: allow}, b: 1}]")
    code, out = run("test", str(tmp_path))
    assert code == 2 and "unknown key 'b'" in out
    write(tmp_path, "policy: nowhere.charter\ntests: [{request: {actor: bot}, expect: {outcome: allow}}]")
    code, out = run("test", str(tmp_path))
    assert code == 2 and "failed to compile" in out
    write(tmp_path, "scenarios: [{name: s, steps: [{advance: soon}]}]")
    code, out = run("test", str(tmp_path))
    assert code == 2 and "bad duration" in out


def test_junit_and_json_formats(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
tests:
  - name: ok
    request: {actor: bot, call: read}
    expect: {outcome: allow}
  - name: broken
    request: {actor: bot, call: read}
    expect: {outcome: deny}
""",
    )
    code, out = run("test", "--format", "junit", str(tmp_path))
    assert code == 1
    root = ET.fromstring(out.split("\n", 1)[1])
    assert root.get("tests") == "2" and root.get("failures") == "1"
    assert [tc.get("name") for tc in root.iter("testcase")] == ["ok", "broken"]
    assert root.find(".//failure") is not None
    code, out = run("test", "--format", "json", str(tmp_path))
    data = json.loads(out)
    assert code == 1 and data["passed"] == 1 and data["failed"] == 1 and not data["ok"]


def test_repeat_numbers_and_settle(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
scenarios:
  - name: repeated
    defaults: {actor: bot, call: pay, context: {run: r1}}
    steps:
      - decide: {args: {amount: 1.0}, cost: {USD: 1.0}}
        repeat: 3
        expect: {outcome: allow}
      - settle: {cost: 1.0}
        expect: {committed: false}
""",
    )
    code, out = run("test", str(tmp_path))
    assert code == 0, out
