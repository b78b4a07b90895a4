"""`charter graph`: pictures of a policy (Mermaid, Graphviz DOT or SVG), or of one decision's path."""

from __future__ import annotations

from pathlib import Path

import click

from charter.api import check
from charter.cli.output import style_diag, use_color
from charter.graph.model import Graph


class DrawError(click.ClickException):
    """Nothing to draw: an unknown decision, an unreadable trace, Graphviz missing (exit 2)."""

    exit_code = 2


@click.command("graph")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--view",
    type=click.Choice(["budgets", "escalations", "signals", "access"]),
    default="budgets",
    show_default=True,
    help="Which picture of the policy.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot", "svg"]),
    default="mermaid",
    show_default=True,
    help="Mermaid (renders on GitHub), Graphviz DOT, or SVG (needs Graphviz's dot).",
)
@click.option("--decision", "decision_id", help="Draw the path this decision took (with --trace).")
@click.option("--trace", "trace_path", help="Trace log of the decision (SQLite file or postgresql:// URL).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.pass_context
def graph_cmd(
    ctx: click.Context,
    paths: tuple[str, ...],
    view: str,
    fmt: str,
    decision_id: str | None,
    trace_path: str | None,
    output: str | None,
) -> None:
    """Draw a policy: its budget hierarchy, escalation chains, signal ranks or who may call what;
    or, with --decision ID --trace PATH, the path one decision took.

    Exit status: 0 drawn, 2 the policy does not compile, the decision is unknown or dot is missing.
    """
    from charter import graph

    if decision_id is not None:
        g = _decision(decision_id, trace_path)
    else:
        if not paths:
            raise click.UsageError("give policy files or directories (or --decision ID --trace PATH)")
        result = check(list(paths))
        if result.policy is None:
            color = use_color(ctx)
            for d in result.errors:
                click.echo(style_diag(d, result.sources.get(d.span.path), color), err=True)
            click.echo("the policy does not compile: nothing to draw", err=True)
            ctx.exit(2)
        assert result.policy is not None
        g = graph.VIEWS[view](result.policy)
    text = graph.mermaid(g) if fmt == "mermaid" else graph.dot(g)
    if fmt == "svg":
        try:
            text = graph.svg(text)
        except graph.GraphError as exc:
            raise DrawError(str(exc)) from None
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def _decision(decision_id: str, trace_path: str | None) -> Graph:
    import os

    from charter import graph
    from charter.trace.log import default_path, get
    from charter.trace.sink import TraceError

    path = trace_path or os.environ.get("CHARTER_TRACE") or default_path(None)
    try:
        rec, related = get(path, decision_id)
    except (FileNotFoundError, TraceError) as exc:
        raise DrawError(str(exc)) from None
    if rec is None or rec.get("kind") != "decision":
        raise DrawError(f"no decision {decision_id} in {path}")
    return graph.decision(rec, related)
