"""`charter diff --prove` and `charter prove` (questions and --lint): exit codes, JSON, SARIF validated
against the official OASIS schema, and the motivating bug of issue 21 (a raised approval threshold
reported as widening even when another rule ties cost.USD to args.amount)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("z3")

from tests.cli.test_check_ci import _official_sarif_schema

from charter.analysis.solve import Stats
from charter.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]

REFUNDS = """policy refunds

units USD
roles support

group finance { members fay, gus }

tool payments.refund {
  arg amount: double
  arg currency: string
}

permit refunds {
  actor role support
  action call payments.refund
  reason "Support may refund."
}

forbid cost-matches {
  action call payments.refund
  unless cost.USD == args.amount
  reason "The cost must be the refunded amount."
}

require approval big-refunds {
  action call payments.refund
  when args.amount > THRESHOLD
  approvers finance
  reason "Big refunds need finance."
}
"""

LINTED = """policy lintme

units USD

group finance { members fay, gus }

tool payments.refund {
  arg amount: double
  arg n: int
}

forbid everything {
  action call payments.refund
  reason "No refunds at all."
}

permit refunds {
  action call payments.refund
  reason "Shadowed by the forbid."
}

permit never {
  action call payments.refund
  when args.amount > 10.0 && args.amount < 5.0
  reason "Never holds."
}

require approval big {
  action call payments.refund
  when args.amount > 100.0
  approvers finance
  reason "Never reached."
}

forbid ratio {
  action call payments.refund
  when 100 / args.n > 1
  reason "Divides by an argument: fails when n is 0."
}

budget refunds-budget {
  scope agent
  action call payments.refund
  limit 100 USD per day
  reason "Never consumed."
}
"""


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return res.exit_code, res.output


def _pair(tmp_path: Path, old: str = "200.0", new: str = "500.0") -> tuple[str, str]:
    a, b = tmp_path / "old.charter", tmp_path / "new.charter"
    a.write_text(REFUNDS.replace("THRESHOLD", old))
    b.write_text(REFUNDS.replace("THRESHOLD", new))
    return str(a), str(b)


def test_raising_the_threshold_is_a_widening_even_with_the_cost_rule(tmp_path: Path) -> None:
    old, new = _pair(tmp_path)
    code, out = run("diff", old, new, "--prove", "--fail-on", "widen", "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["answer"] == "counterexample" and doc["widens"] == 1 and doc["narrows"] == 0
    change = doc["changes"][0]
    assert (change["kind"], change["old"], change["new"]) == ("gate removed", "require_approval", "allow")
    req = change["counterexample"]["request"]
    amount = req["action"]["args"]["amount"]
    assert 200.0 < amount <= 500.0 and req["cost"]["USD"] == amount  # the tie the sampler missed
    assert change["counterexample"]["outcomes"] == ["require_approval", "allow"]
    # the sampling diff misses it (the bug report): the proof is what catches it
    code, out = run("diff", old, new, "--fail-on", "widen")
    assert code == 0


def test_lowering_the_threshold_is_a_narrowing_and_fail_on_any(tmp_path: Path) -> None:
    old, new = _pair(tmp_path, "500.0", "200.0")
    code, out = run("diff", old, new, "--prove", "--fail-on", "widen")
    assert code == 0 and "narrows (1)" in out and "gate added" in out
    code, _ = run("diff", old, new, "--prove", "--fail-on", "any")
    assert code == 1


def test_an_unchanged_policy_is_proved_equivalent(tmp_path: Path) -> None:
    old, new = _pair(tmp_path, "200.0", "200.0")
    code, out = run("diff", old, new, "--prove", "--fail-on", "any")
    assert code == 0 and "proved: no request in any state changes outcome" in out


def test_the_example_policies_against_a_one_rule_change(tmp_path: Path) -> None:
    new = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", new)
    gates = new / "gates.charter"
    gates.write_text(gates.read_text().replace("args.amount > 10000.0", "args.amount > 20000.0"))
    code, out = run("diff", str(ROOT / "policies"), str(new), "--prove", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    kinds = {(c["kind"], c["case"]) for c in doc["changes"]}
    assert ("gate removed", "call payments.transfer") in kinds
    for c in doc["changes"]:
        assert c["case"] == "call payments.transfer"
        assert 10000.0 < c["counterexample"]["request"]["action"]["args"]["amount"] <= 20000.0
    assert doc["seconds"] < 10  # measured ~1 s; generous for a loaded CI box


def _validate(doc: dict[str, Any]) -> None:
    import jsonschema

    schema = _official_sarif_schema()
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(doc)


def test_diff_sarif_validates_against_the_official_schema(tmp_path: Path) -> None:
    old, new = _pair(tmp_path)
    code, out = run("diff", old, new, "--prove", "--format", "sarif")
    assert code == 0
    doc = json.loads(out)
    _validate(doc)
    results = doc["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [("CA001", "error")]


def test_reachability_questions(tmp_path: Path) -> None:
    _, new = _pair(tmp_path)
    code, out = run("prove", new, "can role support call payments.refund where args.amount > 400.0")
    assert code == 0 and "yes:" in out
    old, _ = _pair(tmp_path)
    code, out = run("prove", old, "can role support call payments.refund where args.amount > 400.0")
    assert code == 1 and "proved" in out
    code, out = run(
        "prove", old, "can support call payments.refund", "--outcome", "require_approval", "--format", "json"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["answer"] == "counterexample" and doc["counterexample"]["outcomes"] == ["require_approval"]
    # an agent that is not declared and holds no role is never allowed
    code, out = run("prove", old, "can agent stranger call payments.refund")
    assert code == 0  # an undeclared agent may claim the role: the request says so
    code, _ = run("prove", old, "can stranger fly")
    assert code == 2


def test_lint_by_proof(tmp_path: Path) -> None:
    path = tmp_path / "lint.charter"
    path.write_text(LINTED)
    code, out = run("prove", str(path), "--lint", "--format", "json")
    assert code == 1
    doc = json.loads(out)
    found = {(f["code"], f["subject"], f["answer"]) for f in doc["findings"]}
    assert ("P101", "never", "proved") in found
    assert ("P102", "refunds", "proved") in found
    assert ("P104", "big", "proved") in found
    assert ("P105", "refunds-budget", "proved") in found
    assert ("P103", "ratio", "counterexample") in found
    assert not any(code == "P103" and subject == "big" for code, subject, _ in found)  # n present: no error
    p103 = next(f for f in doc["findings"] if f["code"] == "P103")
    assert p103["counterexample"]["request"]["action"]["args"]["n"] == 0
    code, out = run("prove", str(path), "--lint", "--format", "sarif")
    _validate(json.loads(out))


def test_lint_of_a_clean_policy_finds_nothing(tmp_path: Path) -> None:
    old, _ = _pair(tmp_path)
    code, out = run("prove", old, "--lint", "--format", "json")
    doc = json.loads(out)
    assert doc["findings"] == [] and code == 0


def test_every_counterexample_so_far_reproduced() -> None:
    assert not Stats.mismatches, Stats.mismatches


BUDGETED = """policy b

units USD

tool pay {
  arg amount: double
}

permit pay {
  action call pay
  reason "p"
}

budget daily {
  scope agent
  action call pay
  limit 100 USD per day
  reason "b"
}
"""


def test_some_state_and_every_state(tmp_path: Path) -> None:
    """State is free: a small cost is denied only once the budget is nearly spent (the replay seeds
    the store with that spend), and no costed request is allowed whatever the state."""
    path = tmp_path / "b.charter"
    path.write_text(BUDGETED)
    q = "can any call pay where cost.USD > 0.0 && cost.USD < 1.0"
    code, out = run("prove", str(path), q, "--outcome", "deny", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    used = doc["counterexample"]["state"]["budget_used"]["daily"]
    cost = doc["counterexample"]["request"]["cost"]["USD"]
    assert used + cost > 100.0 and doc["counterexample"]["outcomes"] == ["deny"]
    assert run("prove", str(path), q)[0] == 0  # allowed in some state (nothing spent yet)
    code, out = run("prove", str(path), q, "--in-every-state")
    assert code == 1 and "whatever the state" in out
    assert run("prove", str(path), "can any call pay", "--in-every-state")[0] == 0  # no cost: no budget
