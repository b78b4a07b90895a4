"""`charter graph`: golden Mermaid and DOT pictures of policies/ and of recorded decisions, the
pictures checked into the docs are current, and the CLI draws a decision from a real trace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import charter
from charter import graph
from charter.trace.log import TraceLog

ROOT = Path(__file__).parents[2]
GOLDEN = Path(__file__).parent / "golden"
DECISIONS = json.loads((Path(__file__).parent / "decisions.json").read_text())
UPDATE = os.environ.get("CHARTER_UPDATE_GOLDEN") == "1"


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert path.read_text() == text, f"{name} changed: CHARTER_UPDATE_GOLDEN=1 pytest {__file__} and review"


@pytest.fixture(scope="module")
def policy() -> charter.Policy:
    return charter.load(ROOT / "policies")


@pytest.mark.parametrize("view", sorted(graph.VIEWS))
def test_policy_views_match_golden_files(policy: charter.Policy, view: str) -> None:
    g = graph.VIEWS[view](policy)
    _check(f"{view}.mmd", graph.mermaid(g))
    _check(f"{view}.dot", graph.dot(g))


@pytest.mark.parametrize("item", DECISIONS, ids=[d["record"]["id"] for d in DECISIONS])
def test_decision_paths_match_golden_files(item: dict[str, object]) -> None:
    rec = item["record"]
    assert isinstance(rec, dict)
    _check(f"{rec['id']}.mmd", graph.mermaid(graph.decision(rec, item["related"])))  # type: ignore[arg-type]


def test_the_budget_hierarchy_nests_org_workflow_agent_run(policy: charter.Policy) -> None:
    g = graph.VIEWS["budgets"](policy)
    contains = [(e.source, e.target) for e in g.edges if e.label == "contains"]
    assert contains == [
        ("scope_org", "scope_workflow"),
        ("scope_workflow", "scope_agent"),
        ("scope_agent", "scope_run"),
    ]
    labels = {n.id: n.label for n in g.nodes}
    assert labels["budget_agent_daily_paid_apis"].startswith("budget agent-daily-paid-apis\n50 USD per day")


def test_docs_pictures_are_current(policy: charter.Policy) -> None:
    """docs/pictures/*.mmd are `charter graph policies --view V` (the docs site includes them)."""
    for view in graph.VIEWS:
        path = ROOT / "docs" / "pictures" / f"{view}.mmd"
        expected = graph.mermaid(graph.VIEWS[view](policy))
        if UPDATE:
            path.parent.mkdir(exist_ok=True)
            path.write_text(expected)
        assert path.read_text() == expected, f"{path}: run CHARTER_UPDATE_GOLDEN=1 pytest {__file__}"


def _charter(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "charter", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_cli_draws_a_decision_from_a_real_trace(tmp_path: Path, policy: charter.Policy) -> None:
    trace = tmp_path / "trace.db"
    log = TraceLog(trace, durable=True)
    engine = charter.Engine(policy, trace=log)
    d = engine.decide(
        {"actor": {"id": "research-agent"}, "action": {"kind": "call", "target": "kb.write", "args": {}}}
    )
    log.close()
    run = _charter("graph", "--decision", d.id, "--trace", str(trace))
    assert run.returncode == 0, run.stderr
    assert "rule_research_never_writes_kb" in run.stdout and 'outcome("DENY")' in run.stdout
    dot = _charter("graph", "--decision", d.id, "--trace", str(trace), "--format", "dot")
    assert dot.stdout.startswith("digraph charter {")
    missing = _charter("graph", "--decision", "d-nope", "--trace", str(trace))
    assert missing.returncode == 2 and "no decision d-nope" in missing.stderr


def test_cli_refuses_a_policy_that_does_not_compile(tmp_path: Path) -> None:
    bad = tmp_path / "bad.charter"
    bad.write_text("policy bad\npermit x { approvers nobody }\n")
    run = _charter("graph", str(bad))
    assert run.returncode == 2
    assert "nothing to draw" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_svg_through_graphviz(tmp_path: Path) -> None:
    out = tmp_path / "esc.svg"
    run = _charter("graph", "policies", "--view", "escalations", "--format", "svg", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert out.read_text().lstrip().startswith("<?xml") and "Escalation chains of acme" in out.read_text()


def test_svg_without_graphviz_says_what_to_install(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))
    run = subprocess.run(
        [sys.executable, "-m", "charter", "graph", "policies", "--format", "svg"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 2
    assert "apt-get install graphviz" in run.stderr
