"""`charter replay CANDIDATE --trace LOG`: what a candidate policy would have decided differently."""

from __future__ import annotations

import click

from charter.cli.output import echo_json


@click.command("replay")
@click.argument("candidate", type=click.Path())
@click.option(
    "--trace",
    "trace_path",
    required=True,
    help="Trace log (SQLite file or postgresql:// URL) or a JSONL export.",
)
@click.option("--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty", show_default=True)
@click.option(
    "--fail-on",
    type=click.Choice(["widen", "change", "never"]),
    default="never",
    show_default=True,
    help="Exit 1 when the candidate loosens (or changes) any recorded decision.",
)
@click.option("--limit", default=50, show_default=True, help="Changes listed in the pretty output.")
@click.pass_context
def replay_cmd(
    ctx: click.Context, candidate: str, trace_path: str, fmt: str, fail_on: str, limit: int
) -> None:
    """Re-decide the recorded requests under CANDIDATE (a policy file or directory), each with the
    state its decision saw, and report what changes. Exit 0, 1 per --fail-on, 2 on a load error."""
    from charter.api import check
    from charter.documents import DocumentError
    from charter.trace.replay import records_from, replay
    from charter.trace.sink import TraceError

    result = check([candidate])
    if result.errors or result.policy is None:
        click.echo(
            f"cannot load {candidate}: {len(result.errors)} error(s); run charter check {candidate}", err=True
        )
        ctx.exit(2)
    try:
        report = replay(result.policy, records_from(trace_path))
    except (FileNotFoundError, TraceError, DocumentError) as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    if fmt == "json":
        echo_json(report.to_dict())
    else:
        click.echo(
            f"replayed {report.replayed} decisions under {candidate} (revision "
            f"{result.policy.revision}): {report.unchanged} unchanged, {len(report.changes)} changed, "
            f"{len(report.widened)} loosened"
        )
        for t, n in sorted(report.transitions().items()):
            click.echo(f"  {t}: {n}")
        for c in report.changes[:limit]:
            mark = "LOOSER" if c.widens else "stricter"
            click.echo(
                f"  {mark:8s} {c.id}  {c.agent} -> {c.target}: {c.before} -> {c.after} "
                f"(was {', '.join(c.rules_before) or 'default deny'}; "
                f"now {', '.join(c.rules_after) or 'default deny'})"
            )
        for i, why in report.skipped[:limit]:
            click.echo(f"  skipped {i}: {why}")
        if report.widened:
            click.echo(
                f"this change would have allowed or loosened {len(report.widened)} recorded decision(s)"
            )
    failing = {"widen": bool(report.widened), "change": bool(report.changes), "never": False}[fail_on]
    ctx.exit(1 if failing else 0)
