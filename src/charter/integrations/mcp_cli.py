"""`charter mcp-proxy`: put a policy between any MCP client and an MCP server (stdio)."""

from __future__ import annotations

import sys

import click


@click.command("mcp-proxy", context_settings={"ignore_unknown_options": True})
@click.option("--policy", "policy_path", help="Policy file or directory (in-process engine).")
@click.option("--store", default="memory://", show_default=True, help="State store URL.")
@click.option("--trace", "trace_path", help="Trace log (SQLite file or postgresql:// URL).")
@click.option("--sidecar", help="Decide on a running `charter serve` at this URL instead of --policy.")
@click.option("--token", envvar="CHARTER_TOKEN", help="Token for --sidecar (or $CHARTER_TOKEN).")
@click.option("--agent", default="mcp-agent", show_default=True, help="The actor id of every call.")
@click.option("--workflow", help="Context workflow id.")
@click.option("--run", "run_id", help="Context run id.")
@click.option(
    "--hold",
    type=float,
    default=0.0,
    show_default=True,
    help="Hold a call needing approval up to this many seconds, then forward it if approved.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def mcp_proxy_cmd(
    policy_path: str | None,
    store: str,
    trace_path: str | None,
    sidecar: str | None,
    token: str | None,
    agent: str,
    workflow: str | None,
    run_id: str | None,
    hold: float,
    command: tuple[str, ...],
) -> None:
    """Relay MCP over stdio to COMMAND, deciding every tools/call against the policy."""
    from charter.integrations.mcp_proxy import McpProxy

    if bool(policy_path) == bool(sidecar):
        raise click.UsageError("give exactly one of --policy PATH or --sidecar URL")
    backend: object
    if sidecar:
        from charter.client import Client

        backend = Client(sidecar, token)
    else:
        import charter
        from charter.state import open_store

        trace = None
        if trace_path:
            from charter.trace import TraceLog

            trace = TraceLog(trace_path)
        backend = charter.Engine(charter.load(policy_path), store=open_store(store), trace=trace)  # type: ignore[arg-type]
    context = {k: v for k, v in (("workflow", workflow), ("run", run_id)) if v}
    sys.exit(McpProxy(backend, list(command), agent=agent, context=context, hold_s=hold).run())
