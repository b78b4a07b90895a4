"""`charter mcp-proxy` (stdio relay) and `charter gateway` (MCP gateway over stdio and HTTP)."""

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


@click.command("gateway")
@click.option("--config", "config_path", required=True, help="Gateway configuration (YAML): the servers.")
@click.option("--policy", "policy_path", required=True, help="Policy file or directory (in-process engine).")
@click.option(
    "--store",
    default="memory://",
    show_default=True,
    help="State store URL (share it with `charter serve` for the inbox).",
)
@click.option("--trace", "trace_path", help="Trace log (SQLite file or postgresql:// URL).")
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="How agents reach the gateway.",
)
@click.option(
    "--tokens", "tokens_file", help="Agents' bearer tokens (the sidecar's tokens file); else $CHARTER_TOKENS."
)
@click.option("--token", envvar="CHARTER_TOKEN", help="stdio: this agent's token (or $CHARTER_TOKEN).")
@click.option(
    "--agent", help="stdio without tokens: the actor id of every call (the local caller is trusted)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="http: bind address.")
@click.option("--port", default=8765, show_default=True, type=int, help="http: port.")
@click.option("--stateless", is_flag=True, help="http: no MCP sessions (no elicitation back-channel).")
@click.option(
    "--fast/--no-fast",
    default=True,
    show_default=True,
    help="Take 2026-07-28 tools/call requests on the raw JSON-RPC fast path (--no-fast: the SDK path only).",
)
def gateway_cmd(
    config_path: str,
    policy_path: str,
    store: str,
    trace_path: str | None,
    transport: str,
    tokens_file: str | None,
    token: str | None,
    agent: str | None,
    host: str,
    port: int,
    stateless: bool,
    fast: bool,
) -> None:
    """An MCP gateway: filter tools/list and decide every tools/call of several MCP servers."""
    import anyio

    import charter
    from charter.integrations.gateway import Gateway, http_app
    from charter.integrations.gateway_config import load_config
    from charter.server.auth import load_tokens
    from charter.state import open_store

    config = load_config(config_path)
    tokens = load_tokens(tokens_file)
    trace = None
    if trace_path:
        from charter.trace import TraceLog

        trace = TraceLog(trace_path)
    engine = charter.Engine(charter.load(policy_path), store=open_store(store), trace=trace)
    gw = Gateway(engine, config, tokens=tokens, fast=fast)
    if transport == "http":
        if not tokens:
            raise click.UsageError("--transport http needs agents' tokens (--tokens FILE or $CHARTER_TOKENS)")
        import uvicorn

        from charter.server.proto import protocol_class

        # the sidecar's httptools protocol: a response's head and body in one write (one TCP segment)
        uvicorn.run(
            http_app(gw, host=host, stateless=stateless),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            server_header=False,
            http=protocol_class(),
        )
        return
    if tokens:
        actor = gw.actor_for_token(token)
        if actor is None:
            raise click.UsageError("no valid token for this agent: give --token or $CHARTER_TOKEN")
        gw.agent = actor
    elif agent:
        gw.agent = agent
    else:
        raise click.UsageError("give --tokens FILE with --token, or --agent NAME")
    anyio.run(gw.serve_stdio)
