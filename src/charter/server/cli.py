"""`charter serve`: run the sidecar on uvicorn (one process, or N workers sharing a store)."""

from __future__ import annotations

import dataclasses
import gc
import ipaddress
import json
import logging
import os
import sys
from typing import Any

import click

from charter.cli.stores import resolve_store, store_option
from charter.diagnostics import CharterError
from charter.extras import missing_extra
from charter.server.proto import protocol_class
from charter.server.runtime import ServeConfig

_ENV = "CHARTER_SERVE_CONFIG"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_app(cfg: ServeConfig) -> Any:
    """Load tokens and policy and return the ASGI app (raises on a bad policy or tokens file)."""
    from charter.server.app import create_app
    from charter.server.auth import load_tokens
    from charter.server.runtime import Runtime

    tokens = load_tokens(cfg.tokens_file)
    if not tokens and not cfg.no_auth:
        raise click.UsageError(
            "no bearer tokens: give --tokens FILE or set CHARTER_TOKENS (or --no-auth, loopback only)"
        )
    runtime = Runtime.from_config(cfg)
    return create_app(
        runtime, tokens, no_auth=cfg.no_auth, max_body=cfg.max_body, time_limit_s=cfg.time_limit_s
    )


#: Collector thresholds of `charter serve` (CPython's default is 700, 10, 10). A decision leaves
#: about 8 tracked objects behind (reference cycles, and the engine's pending map for settle), so the
#: defaults run a full collection, whose pause grows with the pending map (100-450 ms measured at
#: 170k-600k objects), every ~9,000 decisions. (5,000, 4, 10) makes full collections ~3x rarer while
#: young ones scan at most ~5,000 objects and middle ones ~20,000 (a few ms); on the sidecar bench,
#: p99 20-25 ms against 93-95 ms with the defaults (same load, back to back).
GC_THRESHOLD = (5_000, 4, 10)


def freeze_heap() -> None:
    """Tune the collector for serving: everything alive after start-up (policy, grammar, compiled
    code, modules) is frozen out of its reach, and collections run less often (GC_THRESHOLD).
    Only `charter serve` calls it, never an embedding process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def app_from_env() -> Any:
    """uvicorn factory for --workers N: each worker builds its app from $CHARTER_SERVE_CONFIG."""
    app = build_app(ServeConfig(**json.loads(os.environ[_ENV])))
    freeze_heap()
    return app


@click.command("serve")
@click.argument("policy_path", type=click.Path(exists=True))
@store_option
@click.option(
    "--trace",
    "trace_path",
    default=None,
    help="Trace log: a SQLite file, or a postgresql:// URL shared by several replicas.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8181, show_default=True, type=int)
@click.option(
    "--tokens",
    "tokens_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Bearer tokens file (YAML/JSON); else $CHARTER_TOKENS.",
)
@click.option(
    "--humans",
    "humans_config",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    envvar="CHARTER_HUMANS",
    help="Inbox and notification settings (YAML; see docs/humans.md); else $CHARTER_HUMANS.",
)
@click.option("--no-auth", is_flag=True, help="Serve without tokens (loopback only; every caller is admin).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--max-body",
    default=1 << 20,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest request body in bytes (413 above).",
)
@click.option(
    "--time-limit",
    "time_limit_s",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Per-request time limit in seconds (503 above, never an allow).",
)
@click.option(
    "--poll",
    "poll_s",
    default=1.0,
    show_default=True,
    type=float,
    help="Seconds between policy file checks (0: reload on SIGHUP only).",
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@click.option(
    "--otel",
    is_flag=True,
    envvar="CHARTER_OTEL",
    help="One OpenTelemetry span per decision (needs the otel extra; also $CHARTER_OTEL=1).",
)
@click.option(
    "--export",
    "export",
    multiple=True,
    metavar="KIND:URL",
    help="Export decision logs, masked as the policy declares: otlp:http://HOST:4318/v1/logs "
    "(needs the otel extra) or jsonl:http(s)://HOST/PATH (docs/export.md).",
)
@click.option(
    "--export-key-file",
    type=click.Path(exists=True, dir_okay=False),
    help="A file whose bytes key the hash masks (else a random key per process).",
)
def serve_cmd(
    policy_path: str,
    store_url: str,
    trace_path: str | None,
    host: str,
    port: int,
    tokens_file: str | None,
    humans_config: str | None,
    no_auth: bool,
    workers: int,
    max_body: int,
    time_limit_s: float,
    poll_s: float,
    log_level: str,
    access_log: bool,
    otel: bool,
    export: tuple[str, ...],
    export_key_file: str | None,
) -> None:
    """Serve decisions for POLICY_PATH over HTTP (see docs/sidecar.md)."""
    try:
        import uvicorn
    except ImportError as exc:
        raise missing_extra("server", "charter serve", exc) from exc

    if no_auth and not _loopback(host):
        raise click.UsageError("--no-auth is only allowed on a loopback address")
    if otel:
        from charter.telemetry import available

        if not available():
            raise click.UsageError("--otel needs OpenTelemetry: pip install 'charter[otel]'")
    if workers > 1 and store_url.startswith("memory"):
        click.echo("warning: with --workers > 1 and memory://, each worker has its own state", err=True)
    cfg = ServeConfig(
        policy_path=policy_path,
        store_url=resolve_store(store_url),
        trace_path=trace_path,
        host=host,
        port=port,
        tokens_file=tokens_file,
        no_auth=no_auth,
        max_body=max_body,
        time_limit_s=time_limit_s,
        poll_s=poll_s,
        workers=workers,
        otel=otel,
        export=export,
        export_key_file=export_key_file,
        humans_config=humans_config,
    )
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log,
        "server_header": False,
        "timeout_keep_alive": 30,
        "http": protocol_class(),
    }
    if workers > 1:
        os.environ[_ENV] = json.dumps(dataclasses.asdict(cfg))
        uvicorn.run("charter.server.cli:app_from_env", factory=True, workers=workers, **common)
        return
    try:
        app = build_app(cfg)
    except CharterError as exc:
        click.echo(f"charter serve: the policy does not compile:\n{exc}", err=True)
        sys.exit(2)
    except (ValueError, OSError) as exc:
        click.echo(f"charter serve: {exc}", err=True)
        sys.exit(2)
    freeze_heap()
    uvicorn.run(app, **common)
