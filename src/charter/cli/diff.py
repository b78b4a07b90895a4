"""`charter diff OLD NEW`: which actor x action x target combinations an edit widens or narrows."""

from __future__ import annotations

import sys

import click

from charter.api import check as compile_check
from charter.cli.output import echo_json
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
    type=click.Choice(["pretty", "json", "github"]),
    default="pretty",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["widen", "never"]),
    default="never",
    show_default=True,
    help="Exit 1 when the new version widens what agents may do.",
)
def diff_cmd(old: str, new: str, fmt: str, fail_on: str) -> None:
    """Compare two policy versions over every declared agent, tool and delegation.

    Exit status: 0, or 1 with --fail-on widen when something is widened; 2 when a version does not
    compile.
    """
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
            click.echo(f"::{level} title=charter diff::{msg.replace('%', '%25').replace(chr(10), '%0A')}")
    else:
        for direction in ("widen", "narrow", "change"):
            group = [c for c in changes if c.direction == direction]
            if group:
                click.echo(f"{direction}s ({len(group)}):")
            for c in group:
                click.echo(f"  {c.kind:9s} {c.subject}: {c.old} -> {c.new}  ({c.detail})")
        if not changes:
            click.echo("no semantic change over the declared catalog")
    if fail_on == "widen" and widen:
        sys.exit(1)
