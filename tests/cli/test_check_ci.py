"""`charter check` for CI: SARIF 2.1.0, JUnit, lint levels from configuration, inline suppressions."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli.lintconfig import LINTS
from charter.cli.main import cli
from charter.diagnostics import Code

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).with_name("sarif-schema-2.1.0.json")

POLICY = """policy lints
roles ops
agent bot { role ops }
tool read {}
tool spare {}
permit ops-read {
  actor role ops
  action call read
}
"""


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return res.exit_code, res.output


def policy(tmp: Path, text: str = POLICY) -> Path:
    (tmp / "p.charter").write_text(text)
    return tmp / "p.charter"


def test_sarif_rules_and_results(tmp_path: Path) -> None:
    code, out = run("check", "--format", "sarif", str(policy(tmp_path)))
    assert code == 0
    log = json.loads(out)
    assert log["version"] == "2.1.0"
    run0 = log["runs"][0]
    rules = run0["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [c.value for c in Code]
    w506 = next(r for r in rules if r["id"] == "W506")
    assert w506["name"] == "NoReason" and w506["helpUri"].endswith("docs/diagnostics.md#w506")
    assert w506["shortDescription"]["text"] == LINTS["W506"][1]
    found = {(r["ruleId"], r["level"]) for r in run0["results"]}
    assert found == {("W506", "warning"), ("W505", "warning")}
    for r in run0["results"]:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1


def test_sarif_validates_against_the_official_schema(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMA.exists():
        pytest.skip("tests/cli/sarif-schema-2.1.0.json is not vendored yet")
    schema = json.loads(SCHEMA.read_text())
    bad = policy(tmp_path, POLICY + "\npermit broken { actor role nobody action call read }\n")
    for path in (str(ROOT / "policies"), str(tmp_path / "p.charter"), str(bad)):
        _, out = run("check", "--format", "sarif", path)
        jsonschema.validate(json.loads(out), schema)


def test_junit_one_testcase_per_file_failures_per_error(tmp_path: Path) -> None:
    policy(tmp_path, POLICY + "\npermit broken { actor role nobody action call nothing }\n")
    (tmp_path / "ok.charter").write_text("policy other\n")
    code, out = run("check", "--format", "junit", str(tmp_path))
    assert code == 2
    root = ET.fromstring(out.split("\n", 1)[1])
    cases = list(root.iter("testcase"))
    assert len(cases) == 2
    failing = [c for c in cases if c.find("failure") is not None]
    assert len(failing) == 1 and failing[0].get("name", "").endswith("p.charter")
    assert len(failing[0].findall("failure")) == 2  # unknown role and unknown tool


def test_lint_levels_from_charter_yaml(tmp_path: Path) -> None:
    p = policy(tmp_path)
    (tmp_path / ".charter.yaml").write_text("lint: {W506: off, W505: error}\n")
    code, out = run("check", "--format", "json", str(p))
    data = json.loads(out)
    assert code == 2
    assert [(d["code"], d["severity"]) for d in data["diagnostics"]] == [("W505", "error")]


def test_lint_levels_from_pyproject_walking_up(tmp_path: Path) -> None:
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    policy(sub)
    (tmp_path / "pyproject.toml").write_text('[tool.charter]\nlint = {W505 = "off", W506 = "warning"}\n')
    code, out = run("check", "--strict", "--format", "json", str(sub))
    assert code == 1
    assert [d["code"] for d in json.loads(out)["diagnostics"]] == ["W506"]
    (tmp_path / "pyproject.toml").write_text('[tool.charter]\nlint = {W999 = "off"}\n')
    code, out = run("check", str(sub))
    assert code == 2 and "unknown lint code 'W999'" in out


def test_inline_suppression_needs_a_reason(tmp_path: Path) -> None:
    text = POLICY.replace("tool spare {}", "tool spare {}  # charter: ignore W505 -- kept for the Q3 rollout")
    text = text.replace("permit ops-read {", "# charter: ignore W506\npermit ops-read {")
    code, out = run("check", "--format", "json", str(policy(tmp_path, text)))
    codes = [d["code"] for d in json.loads(out)["diagnostics"]]
    assert sorted(codes) == ["W506", "W509"]
    text = text.replace("# charter: ignore W506\n", "# charter: ignore W506 -- reasons live in the runbook\n")
    code, out = run("check", "--format", "json", str(policy(tmp_path, text)))
    assert json.loads(out)["diagnostics"] == [] and code == 0


def test_every_lint_code_is_documented() -> None:
    doc = (ROOT / "docs" / "lint.md").read_text()
    for code in (c.value for c in Code if c.value.startswith("W")):
        assert f"## {code}" in doc, code
        section = doc.split(f"## {code}", 1)[1].split("\n## ", 1)[0]
        for part in ("**What**", "**Why**", "**Example**", "**Fix**"):
            assert part in section, (code, part)
