"""`charter diff OLD NEW`: which actor x action x target combinations an edit widens or narrows."""

from __future__ import annotations

import sys

import click

from charter.api import check as compile_check
from charter.cli.output import echo_json, github_data
from charter.diagnostics import render_all
from charter.engine.policy import CompiledPolicy
from charter.testing.diff import diff


def _load(path: str) -> CompiledPolicy:
    res = compile_check([path])
    if res.errors or res.policy is None:
        click.echo(f"error: {path} does not compile\n" + render_all(res.errors, res.sources), err=True)
        sys.exit(2)
    return res.policy


@click.command("diff")
@click.argument("old", type=click.Path(exists=True))
@click.argument("new", type=click.Path(exists=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["pretty", "json", "github", "sarif"]),
    default="pretty",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["widen", "any", "never"]),
    default="never",
    show_default=True,
    help="Exit 1 when the new version widens what agents may do (any: changes it at all).",
)
@click.option(
    "--prove",
    is_flag=True,
    help="Prove it with the z3 SMT solver over every request and state (needs the analysis extra).",
)
def diff_cmd(old: str, new: str, fmt: str, fail_on: str, prove: bool) -> None:
    """Compare two policy versions over every declared agent, tool and delegation.

    Exit status: 0, or 1 with --fail-on widen when something is widened; 2 when a version does not
    compile. With --prove: 3 when --fail-on is given and some case is unknown (nothing is
    proved about it, so the gate fails closed).
    """
    if prove:
        from charter.cli.prove import diff_prove

        diff_prove(_load(old), _load(new), fmt, fail_on, new)
        return
    changes = diff(_load(old), _load(new))
    widen = [c for c in changes if c.direction == "widen"]
    if fmt == "json":
        echo_json(
            {
                "schema_version": 1,
                "widens": len(widen),
                "narrows": len(changes) - len(widen),
                "changes": [c.to_dict() for c in changes],
            }
        )
    elif fmt == "github":
        for c in changes:
            level = "warning" if c.direction == "widen" else "notice"
            msg = f"{c.direction}s {c.kind} {c.subject}: {c.old} -> {c.new} ({c.detail})"
            click.echo(f"::{level} title=charter diff::{github_data(msg)}")
    else:
        for direction in ("widen", "narrow", "change"):
            group = [c for c in changes if c.direction == direction]
            if group:
                click.echo(f"{direction}s ({len(group)}):")
            for c in group:
                click.echo(f"  {c.kind:9s} {c.subject}: {c.old} -> {c.new}  ({c.detail})")
        if not changes:
            click.echo("no semantic change over the declared catalog")
    if (fail_on == "widen" and widen) or (fail_on == "any" and changes):
        sys.exit(1)
