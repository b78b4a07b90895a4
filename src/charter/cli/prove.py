"""`charter diff --prove` output and `charter prove POLICY QUESTION`: text, JSON or SARIF."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from charter import __version__
from charter.cli.output import echo_json, github_data
from charter.engine.policy import CompiledPolicy

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_RULES = {
    "widen": ("CA001", "widening", "The new policy version allows more than the old one."),
    "narrow": ("CA002", "narrowing", "The new policy version allows less than the old one."),
    "unknown": ("CA003", "unknown", "The analysis could not prove or refute a case."),
}


def _missing_z3() -> None:
    click.echo("error: --prove needs the z3 solver: pip install 'charter[analysis]'", err=True)
    sys.exit(2)


def diff_sarif(result: Any, new_path: str) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one result per change (widen: error, narrow: note) and per unknown case."""
    ids = list(_RULES)
    rules = [
        {"id": code, "name": name, "shortDescription": {"text": text}}
        for code, name, text in (_RULES[k] for k in ids)
    ]
    loc = [{"physicalLocation": {"artifactLocation": {"uri": new_path}}}]
    results = []
    for c in result.changes:
        key = "widen" if c.direction == "widen" else "narrow"
        req = json.dumps(c.witness.to_dict(), sort_keys=True)
        results.append(
            {
                "ruleId": _RULES[key][0],
                "ruleIndex": ids.index(key),
                "level": "error" if key == "widen" else "note",
                "message": {"text": f"{c.kind} ({c.case}): {c.old} -> {c.new}; counterexample {req}"},
                "locations": loc,
            }
        )
    for u in result.unknowns:
        results.append(
            {
                "ruleId": _RULES["unknown"][0],
                "ruleIndex": ids.index("unknown"),
                "level": "warning",
                "message": {"text": f"unknown ({u.case}): {'; '.join(u.reasons)}"},
                "locations": loc,
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "charter-prove", "version": __version__, "rules": rules}},
                "results": results,
            }
        ],
    }


def diff_prove(old: CompiledPolicy, new: CompiledPolicy, fmt: str, fail_on: str, new_path: str = "") -> None:
    """Run the proved diff and print it; exit 1 on a change --fail-on names, 3 on unknown with --fail-on."""
    try:
        from charter.analysis.diff import prove_diff
    except ImportError:
        _missing_z3()
    result = prove_diff(old, new)
    if fmt == "json":
        echo_json(result.to_dict())
    elif fmt == "sarif":
        echo_json(diff_sarif(result, new_path or new.files[0] if new.files else ""))
    elif fmt == "github":
        for c in result.changes:
            level = "error" if c.direction == "widen" else "notice"
            req = json.dumps(c.witness.to_dict(), sort_keys=True)
            msg = github_data(f"{c.kind} ({c.case}): {c.old} -> {c.new} {req}")
            click.echo(f"::{level} title=charter diff --prove::{msg}")
        for u in result.unknowns:
            msg = github_data(f"unknown ({u.case}): " + "; ".join(u.reasons))
            click.echo(f"::warning title=charter diff --prove::{msg}")
    else:
        for direction in ("widen", "narrow"):
            group = [c for c in result.changes if c.direction == direction]
            if group:
                click.echo(f"{direction}s ({len(group)}):")
            for c in group:
                click.echo(f"  {c.kind}: {c.case}: {c.old} -> {c.new}")
                click.echo(
                    f"    counterexample (replayed): {json.dumps(c.witness.to_dict(), sort_keys=True)}"
                )
        for u in result.unknowns:
            click.echo(f"unknown: {u.case}: {'; '.join(u.reasons)}")
        if result.answer.value == "proved":
            click.echo(f"proved: no request in any state changes outcome ({len(result.proved)} cases)")
        click.echo(f"({result.seconds:.2f} s)")
    if (fail_on == "widen" and result.widens) or (fail_on == "any" and result.changes):
        sys.exit(1)
    if fail_on in ("widen", "any") and result.unknowns:
        sys.exit(3)


def lint_sarif(result: Any) -> dict[str, Any]:
    """A SARIF 2.1.0 log of proved lint findings: one rule per code, located at the rule's source."""
    from charter.analysis.lint import LintCode

    codes = list(LintCode)
    rules = [
        {"id": c.value, "name": c.slug, "shortDescription": {"text": c.slug.replace("-", " ")}} for c in codes
    ]
    results = []
    for f in result.findings:
        loc: dict[str, Any] = {}
        if f.source:
            path, line, col = f.source.rsplit(":", 2)
            loc = {
                "physicalLocation": {
                    "artifactLocation": {"uri": path},
                    "region": {"startLine": max(1, int(line)), "startColumn": max(1, int(col))},
                }
            }
        entry: dict[str, Any] = {
            "ruleId": f.code.value,
            "ruleIndex": codes.index(f.code),
            "level": "warning",
            "message": {"text": f"{f.message} ({f.answer.value})"},
        }
        if loc:
            entry["locations"] = [loc]
        results.append(entry)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "charter-prove", "version": __version__, "rules": rules}},
                "results": results,
            }
        ],
    }


def _lint(pol: CompiledPolicy, fmt: str) -> None:
    from charter.analysis.lint import lint

    result = lint(pol)
    if fmt == "json":
        echo_json(result.to_dict())
    elif fmt == "sarif":
        echo_json(lint_sarif(result))
    else:
        for f in result.findings:
            where = f"{f.source}: " if f.source else ""
            click.echo(f"{where}{f.code.value} {f.code.slug} ({f.answer.value}): {f.message}")
            if f.witness is not None:
                click.echo(f"    counterexample (replayed): {json.dumps(f.witness, sort_keys=True)}")
        for u in result.unknowns:
            click.echo(f"unknown: {u}")
        click.echo(
            f"{len(result.findings)} findings, {len(result.unknowns)} unknown ({result.seconds:.2f} s)"
        )
    sys.exit(1 if result.findings else 0)


@click.command("prove")
@click.argument("policy", type=click.Path(exists=True))
@click.argument("question", required=False)
@click.option(
    "--outcome",
    type=click.Choice(["allow", "require_approval", "escalate", "deny", "halt"]),
    default="allow",
    show_default=True,
)
@click.option(
    "--format", "fmt", type=click.Choice(["pretty", "json", "sarif"]), default="pretty", show_default=True
)
@click.option(
    "--lint",
    "lint_",
    is_flag=True,
    help="Lint by proof: dead rules, shadowed permits, conditions that can error, unreachable gates, "
    "budgets no request can consume (exit 1 on a finding).",
)
@click.option(
    "--in-every-state",
    "every_state",
    is_flag=True,
    help="Ask for a request that gets the outcome whatever the state (budgets spent, rates used, run "
    "history); by default some state is enough.",
)
def prove_cmd(
    policy: str, question: str | None, outcome: str, fmt: str, lint_: bool, every_state: bool
) -> None:
    """Answer "can <actor or role> <call T | delegate A | ...> [where CEL]" with a proof or a
    replayed counterexample, or (--lint) lint the policy by proof.

    Exit status: 0 reachable (a request is printed), 1 proved unreachable, 3 unknown, 2 bad input.
    """
    from charter.cli.diff import _load

    try:
        from charter.analysis.query import QueryError, reach
    except ImportError:
        _missing_z3()
    pol = _load(policy)
    if lint_:
        _lint(pol, fmt)
        return
    if not question:
        click.echo(
            'error: ask a question, e.g. "can role support call payments.refund", or pass --lint', err=True
        )
        sys.exit(2)
    try:
        res = reach(pol, question, outcome, every_state)
    except QueryError as ex:
        click.echo(f"error: {ex}", err=True)
        sys.exit(2)
    if fmt in ("json", "sarif"):
        echo_json(res.to_dict())
    else:
        if res.answer.value == "counterexample" and res.witness is not None:
            click.echo(f"yes: this request gets {outcome} (replayed through the engine):")
            click.echo("  " + json.dumps(res.witness.to_dict(), sort_keys=True))
        elif res.answer.value == "proved":
            when = "whatever the state" if every_state else "in any state"
            click.echo(f"no: proved that no such request gets {outcome} {when}")
        else:
            click.echo("unknown: " + "; ".join(res.reasons or []))
    sys.exit({"counterexample": 0, "proved": 1}.get(res.answer.value, 3))
