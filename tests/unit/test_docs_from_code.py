"""Docs generated from code stay current, and say what the compiler does (the clause table)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from charter.compiler.pipeline import compile_text
from charter.compiler.resolve import ALLOWED, CLAUSE_ORDER, REQUIRED
from charter.enums import RuleKind

ROOT = Path(__file__).resolve().parents[2]

#: One valid example of each clause (a rule of any kind that accepts it compiles with it).
SAMPLES = {
    "actor": "actor any",
    "action": "action call t",
    "when": "when args.n > 1",
    "unless": "unless args.n > 5",
    "reason": 'reason "why"',
    "mode": "mode shadow",
    "on error": "on error deny",
    "signal": "signal k",
    "after": "after call t",
    "before": "before call t",
    "stop": "stop agent",
    "to": "to g",
    "severity": "severity high",
    "approvers": "approvers g",
    "quorum": "quorum 1",
    "separation of duties": "separation of duties off",
    "expires after": "expires after 1h",
    "redeem within": "redeem within 30m",
    "on timeout": "on timeout deny",
    "scope": "scope agent",
    "limit": "limit 5 USD per day",
    "timezone": 'timezone "UTC"',
    "on exceed": "on exceed halt",
    "trigger": "trigger repeated call more than 5 times within 2m",
    "amount": "amount double(args.n)",
    "then": "then halt",
}
HEAD = "policy p\nunits USD\ngroup g { members a, b }\ntool t { arg n: int }\nsignal k { from s }\n"
KEYWORD = {RuleKind.APPROVAL: "require approval", RuleKind.RESULT: "on result"}


def test_the_generated_docs_are_current() -> None:
    run = subprocess.run(
        [sys.executable, "scripts/gen_docs.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def _rule(kind: RuleKind, clauses: list[str]) -> str:
    body = "\n".join(f"  {c}" for c in clauses)
    return f"{HEAD}{KEYWORD.get(kind, kind.value)} r1 {{\n{body}\n}}\n"


def _required(kind: RuleKind, but: str) -> list[str]:
    out = [SAMPLES[c] for c in REQUIRED.get(kind, ()) if c != but]
    if kind is RuleKind.RATE:
        out = [c.replace("limit 5 USD per day", "limit 5 per 1m") for c in out]
    return out


@pytest.mark.parametrize("kind", list(RuleKind), ids=lambda k: k.value)
@pytest.mark.parametrize("clause", CLAUSE_ORDER)
def test_the_table_is_what_the_compiler_accepts(kind: RuleKind, clause: str) -> None:
    """✓ or R in the table: a rule with the clause compiles without E106; — : E106 names it."""
    sample = SAMPLES[clause]
    if kind is RuleKind.RATE and clause == "limit":
        sample = "limit 5 per 1m"
    clauses = [*_required(kind, clause), sample]
    result = compile_text(_rule(kind, clauses), "p.charter")
    codes = {(d.code.value, d.message) for d in result.errors}
    bad_clause = [m for c, m in codes if c == "E106" and f"'{clause}'" in m]
    if clause in ALLOWED[kind]:
        assert not bad_clause, codes
    else:
        assert bad_clause, f"{clause} in a {kind.value} rule was accepted: {codes}"
