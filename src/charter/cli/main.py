"""The `charter` command: a click group wiring one module per subcommand."""

from __future__ import annotations

import sys

import click

from charter import __version__
from charter.cli.check import check_cmd
from charter.cli.completion import completion_cmd
from charter.cli.diff import diff_cmd
from charter.cli.eval import eval_cmd
from charter.cli.fmt import fmt_cmd
from charter.cli.graph import graph_cmd
from charter.cli.humans import approvals_cmd, escalations_cmd, resume_cmd, stop_cmd, stops_cmd
from charter.cli.lsp import lsp_cmd
from charter.cli.prove import prove_cmd
from charter.cli.replay import replay_cmd
from charter.cli.test import test_cmd
from charter.cli.trace import trace_cmd
from charter.extras import MissingExtra
from charter.integrations.mcp_cli import gateway_cmd, mcp_proxy_cmd
from charter.server.cli import serve_cmd

#: Exit codes (documented in docs/cli.md).
EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="charter")
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour output (NO_COLOR in the environment also turns it off).",
)
@click.pass_context
def cli(ctx: click.Context, color: str) -> None:
    """charter: policy-as-code boundaries for orchestrated AI agents."""
    ctx.ensure_object(dict)
    ctx.obj["color"] = color


cli.add_command(check_cmd)
cli.add_command(eval_cmd)
cli.add_command(fmt_cmd)
cli.add_command(test_cmd)
cli.add_command(diff_cmd)
cli.add_command(prove_cmd)
cli.add_command(serve_cmd)
cli.add_command(mcp_proxy_cmd)
cli.add_command(gateway_cmd)
cli.add_command(lsp_cmd)
cli.add_command(graph_cmd)
cli.add_command(completion_cmd)
for _cmd in (replay_cmd, trace_cmd, approvals_cmd, escalations_cmd, stop_cmd, resume_cmd, stops_cmd):
    cli.add_command(_cmd)


def main() -> None:
    """Console-script entry point; usage errors exit 2, and so does a feature whose extra is missing."""
    try:
        cli(prog_name="charter")
    except MissingExtra as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
