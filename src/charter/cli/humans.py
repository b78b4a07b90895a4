"""`charter approvals|escalations|stop|resume|stops`: people acting on gates, escalations and stops.

By default every command talks to the sidecar with a token (``--url``, ``--token`` or $CHARTER_URL,
$CHARTER_TOKEN): the sidecar names the person from the token. ``--store URL --admin --as NAME``
writes the state store directly instead; the name is then self-asserted, so the trace records the
act as ``store-admin`` (docs/humans.md).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import click

from charter.approvals import HumanError
from charter.approvals.identity import Channel
from charter.cli.output import echo_json

DEFAULT_URL = "http://127.0.0.1:8181"
#: Header the sidecar reads to record that a person answered through the command line.
CLIENT_HEADERS = {"X-Charter-Client": "cli"}


class Desk(Protocol):
    """What a person can do, whichever way the command reaches the state (sidecar or store)."""

    approvals: Any
    escalations: Any

    def approve(self, approval_id: str, note: str) -> dict[str, Any]: ...
    def deny(self, approval_id: str, note: str) -> dict[str, Any]: ...
    def answer(self, escalation_id: str, verdict: str, note: str) -> dict[str, Any]: ...
    def stop(self, scope: str, value: str, reason: str) -> dict[str, Any]: ...
    def resume(self, scope: str, value: str, reason: str) -> dict[str, Any]: ...
    def stops(self) -> list[Any]: ...
    def stop_log(self) -> list[dict[str, Any]]: ...


class SidecarDesk:
    """Through `charter serve` with a token: the sidecar decides who you are."""

    def __init__(self, url: str, token: str):
        from charter.client import Client

        self.client = Client(url, token, headers=CLIENT_HEADERS)
        self.approvals = self.client.approvals
        self.escalations = self.client.escalations

    def approve(self, approval_id: str, note: str) -> dict[str, Any]:
        return self.client.approvals.approve(approval_id, note=note)

    def deny(self, approval_id: str, note: str) -> dict[str, Any]:
        return self.client.approvals.deny(approval_id, note=note)

    def answer(self, escalation_id: str, verdict: str, note: str) -> dict[str, Any]:
        return self.client.escalations.answer(escalation_id, verdict=verdict, note=note)

    def stop(self, scope: str, value: str, reason: str) -> dict[str, Any]:
        return self.client.stops.stop(scope, value, reason).to_dict()

    def resume(self, scope: str, value: str, reason: str) -> dict[str, Any]:
        return self.client.stops.resume(scope, value, reason=reason)

    def stops(self) -> list[Any]:
        return self.client.stops.list()

    def stop_log(self) -> list[dict[str, Any]]:
        return list(self.client.request("GET", "/v1/stops/log")["items"])


class AdminDesk:
    """Direct store access (``--admin``): the caller names themselves; recorded as store-admin."""

    def __init__(self, engine: Any, who: str):
        self.engine, self.who = engine, who
        self.approvals = engine.approvals
        self.escalations = engine.escalations

    def approve(self, approval_id: str, note: str) -> dict[str, Any]:
        return dict(self.engine.approvals.approve(approval_id, self.who, note, via=Channel.ADMIN))

    def deny(self, approval_id: str, note: str) -> dict[str, Any]:
        return dict(self.engine.approvals.deny(approval_id, self.who, note, via=Channel.ADMIN))

    def answer(self, escalation_id: str, verdict: str, note: str) -> dict[str, Any]:
        return dict(self.engine.escalations.answer(escalation_id, self.who, verdict, note, via=Channel.ADMIN))

    def stop(self, scope: str, value: str, reason: str) -> dict[str, Any]:
        return self.engine.stops.stop(scope, value, reason, self.who, via=Channel.ADMIN).to_dict()

    def resume(self, scope: str, value: str, reason: str) -> dict[str, Any]:
        return dict(self.engine.stops.resume(scope, value, self.who, reason, via=Channel.ADMIN))

    def stops(self) -> list[Any]:
        return list(self.engine.stops.list())

    def stop_log(self) -> list[dict[str, Any]]:
        return list(self.engine.stops.log())


def _admin_engine(policy: str, store_url: str, trace_path: str | None) -> Any:
    from charter.api import check
    from charter.approvals.feed import ChangeFeed
    from charter.engine.engine import Engine
    from charter.state import StoreError, open_store
    from charter.trace import TraceLog
    from charter.trace.log import default_path
    from charter.trace.sink import TraceError

    result = check([policy])
    if result.errors or result.policy is None:
        raise click.ClickException(
            f"cannot load policy {policy}: {len(result.errors)} error(s); run charter check {policy}"
        )
    try:
        store = open_store(store_url)
        store.ping()
    except (ValueError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    path = trace_path or os.environ.get("CHARTER_TRACE") or default_path(store_url)
    try:
        trace = TraceLog(path)
    except TraceError as exc:
        raise click.ClickException(f"{exc} (admin acts are recorded in the trace: give --trace)") from None
    return Engine(result.policy, store=store, trace=trace, notifier=ChangeFeed(store))


@contextmanager
def desk(opts: dict[str, Any]) -> Iterator[Desk]:
    """The desk the options ask for; errors become one-line messages (exit 1), usage errors exit 2."""
    from charter.client import SidecarError, TransportError

    engine = None
    try:
        if opts["admin"]:
            store_url = opts["store_url"] or os.environ.get("CHARTER_STORE")
            if not store_url or not opts["who"]:
                raise click.UsageError("--admin writes the store directly: give --store URL and --as NAME")
            click.echo(
                f"admin mode: writing {store_url.split('?')[0]} directly as {opts['who']} "
                "(recorded as store-admin in the trace)",
                err=True,
            )
            engine = _admin_engine(opts["policy"], store_url, opts["trace_path"])
            yield AdminDesk(engine, opts["who"])
            return
        if opts["store_url"] or opts["who"]:
            raise click.UsageError(
                "the sidecar names you from your token: use --url and --token (or $CHARTER_URL, "
                "$CHARTER_TOKEN); --store and --as are for the direct-store admin mode (add --admin)"
            )
        if not opts["token"]:
            raise click.UsageError(
                "give --token or set $CHARTER_TOKEN (your token from the sidecar's tokens file), "
                "or use --store URL --admin --as NAME for direct store access"
            )
        yield SidecarDesk(opts["url"], opts["token"])
    except HumanError as exc:
        raise click.ClickException(str(exc)) from None
    except TransportError as exc:
        raise click.ClickException(
            f"cannot reach the sidecar at {opts['url']} ({exc}); start `charter serve` or pass --url"
        ) from None
    except SidecarError as exc:
        raise click.ClickException(f"{exc} ({exc.status} {exc.code})") from None
    finally:
        if engine is not None and engine.trace is not None:
            engine.trace.close()


def common(f: Callable[..., Any]) -> Callable[..., Any]:
    """The connection options every human command takes (collected into one ``opts`` dict)."""
    options = [
        click.option(
            "--url", envvar="CHARTER_URL", default=DEFAULT_URL, show_default=True, help="Sidecar URL."
        ),
        click.option("--token", envvar="CHARTER_TOKEN", help="Your bearer token (else $CHARTER_TOKEN)."),
        click.option("--admin", is_flag=True, help="Write the state store directly (needs --store, --as)."),
        click.option("--store", "store_url", help="Admin mode: state store URL (else $CHARTER_STORE)."),
        click.option("--as", "who", help="Admin mode: your name, recorded as store-admin."),
        click.option(
            "--policy",
            default="policies",
            show_default=True,
            envvar="CHARTER_POLICY",
            help="Admin mode: policy file or directory (groups, operators).",
        ),
        click.option(
            "--trace",
            "trace_path",
            help="Admin mode: trace log to record in (else $CHARTER_TRACE, else next to a SQLite store).",
        ),
        click.option(
            "--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty", show_default=True
        ),
    ]
    keys = ("url", "token", "admin", "store_url", "who", "policy", "trace_path", "fmt")

    def wrapper(**kw: Any) -> Any:
        opts = {k: kw.pop(k) for k in keys}
        return f(opts, **kw)

    wrapper.__name__, wrapper.__doc__ = f.__name__, f.__doc__
    for opt in reversed(options):
        wrapper = opt(wrapper)
    return wrapper


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _show_record(doc: dict[str, Any]) -> None:
    for key in ("id", "status", "outcome", "group", "target", "requester", "decision_id"):
        if doc.get(key) is not None:
            click.echo(f"{key:12s} {doc[key]}")
    a = doc.get("action", {})
    click.echo(f"{'action':12s} {a.get('kind')} {a.get('target')} by {a.get('agent')} args={a.get('args')}")
    if "expires_at" in doc:
        click.echo(f"{'expires':12s} {_when(doc['expires_at'])}")
    if doc.get("redeem_by") is not None:
        click.echo(f"{'usable until':12s} {_when(doc['redeem_by'])}")
    for g in doc.get("gates", []):
        click.echo(
            f"{'gate':12s} {g['rule']}: {g['quorum']} of {g['group']} ({', '.join(g.get('members', []))})"
        )
    for s in doc.get("chain", []):
        click.echo(f"{'chain':12s} {s['target']} for {s.get('timeout_s') or 'ever'} s")
    for s in doc.get("signals", []):
        click.echo(f"{'signal':12s} {s['source']}: {s['kind']} (score {s.get('score', 0)})")
    click.echo("history:")
    for h in doc.get("history", []):
        via = f" ({h['via']})" if h.get("via") else ""
        click.echo(f"  {_when(h['at'])}  {h['event']:16s} {h.get('by') or ''}{via}  {h.get('note') or ''}")


# ---- approvals ------------------------------------------------------------------------------------
@click.group("approvals")
def approvals_cmd() -> None:
    """List and answer approval requests (human gates)."""


@approvals_cmd.command("list")
@click.option("--status", type=click.Choice(["pending", "approved", "denied", "expired", "redeemed"]))
@common
def approvals_list(opts: dict[str, Any], status: str | None) -> None:
    """Approval requests, newest first."""
    with desk(opts) as d:
        docs = d.approvals.list(status)
    if opts["fmt"] == "json":
        echo_json({"schema_version": 1, "approvals": docs})
        return
    for doc in docs:
        a = doc["action"]
        n = len(doc["approvals"])
        need = max(g["quorum"] for g in doc["gates"])
        click.echo(
            f"{doc['id']}  {doc['status']:9s} {a['target']} by {a['agent']}  {n}/{need} of {doc['group']}  "
            f"expires {_when(doc['expires_at'])}"
        )
    if not docs:
        click.echo("no approval requests")


@approvals_cmd.command("show")
@click.argument("approval_id")
@common
def approvals_show(opts: dict[str, Any], approval_id: str) -> None:
    """One approval request with its status history."""
    with desk(opts) as d:
        doc = d.approvals.get(approval_id)
    echo_json(doc) if opts["fmt"] == "json" else _show_record(doc)


def _answer(verb: str) -> None:
    @approvals_cmd.command(
        verb, help=f"{verb.capitalize()} an approval request (you are who your token says)."
    )
    @click.argument("approval_id")
    @click.option("--note", default="", help="Why.")
    @common
    def cmd(opts: dict[str, Any], approval_id: str, note: str) -> None:
        with desk(opts) as d:
            doc = d.approve(approval_id, note) if verb == "approve" else d.deny(approval_id, note)
        if opts["fmt"] == "json":
            echo_json(doc)
        else:
            click.echo(f"{approval_id}: {doc['status']} ({len(doc['approvals'])} approval(s))")


_answer("approve")
_answer("deny")


# ---- escalations ----------------------------------------------------------------------------------
@click.group("escalations")
def escalations_cmd() -> None:
    """List and answer escalations."""


@escalations_cmd.command("list")
@click.option("--status", type=click.Choice(["open", "allowed", "denied", "fallback", "redeemed"]))
@common
def escalations_list(opts: dict[str, Any], status: str | None) -> None:
    """Escalations, newest first (moved up their chain as time passes)."""
    with desk(opts) as d:
        docs = d.escalations.list(status)
    if opts["fmt"] == "json":
        echo_json({"schema_version": 1, "escalations": docs})
        return
    for doc in docs:
        a = doc["action"]
        click.echo(
            f"{doc['id']}  {doc['status']:8s} {doc['severity']:6s} {a['target']} by {a['agent']}  "
            f"-> {doc.get('target') or doc.get('outcome')}"
        )
    if not docs:
        click.echo("no escalations")


@escalations_cmd.command("show")
@click.argument("escalation_id")
@common
def escalations_show(opts: dict[str, Any], escalation_id: str) -> None:
    """One escalation: target, chain, the signals side by side, history."""
    with desk(opts) as d:
        doc = d.escalations.get(escalation_id)
    echo_json(doc) if opts["fmt"] == "json" else _show_record(doc)


@escalations_cmd.command("answer")
@click.argument("escalation_id")
@click.argument("verdict", type=click.Choice(["allow", "deny"]))
@click.option("--note", default="")
@common
def escalations_answer(opts: dict[str, Any], escalation_id: str, verdict: str, note: str) -> None:
    """Answer an escalation allow or deny (as the current target or someone above it)."""
    with desk(opts) as d:
        doc = d.answer(escalation_id, verdict, note)
    echo_json(doc) if opts["fmt"] == "json" else click.echo(f"{escalation_id}: {doc['status']}")


# ---- stops ------------------------------------------------------------------------------------------
@click.command("stop")
@click.option(
    "--scope",
    required=True,
    type=click.Choice(["global", "workflow", "agent", "tool", "run", "role", "tenant"]),
)
@click.option("--value", default="*", help="Which workflow/agent/tool... ('*' for global).")
@click.option("--reason", required=True)
@common
def stop_cmd(opts: dict[str, Any], scope: str, value: str, reason: str) -> None:
    """Emergency stop: every decision this scope covers is halt, in every process sharing the store."""
    with desk(opts) as d:
        rec = d.stop(scope, value, reason)
    if opts["fmt"] == "json":
        echo_json(rec)
    else:
        click.echo(f"stopped {rec['scope']} {rec['value']}: {rec['reason']} (by {rec['by']})")


@click.command("resume")
@click.option("--scope", required=True)
@click.option("--value", default="*")
@click.option("--reason", default="")
@common
def resume_cmd(opts: dict[str, Any], scope: str, value: str, reason: str) -> None:
    """Ask to resume a stopped scope; it resumes once enough distinct operators asked."""
    with desk(opts) as d:
        res = d.resume(scope, value, reason)
    if opts["fmt"] == "json":
        echo_json(res)
    elif res["resumed"]:
        click.echo(f"resumed {scope} {value} (by {', '.join(res['operators'])})")
    else:
        click.echo(
            f"resume of {scope} {value} requested by {res['operators'][-1]}: "
            f"{res['have']} of {res['need']} operators"
        )


@click.command("stops")
@click.option("--log", "show_log", is_flag=True, help="Every stop and resume, with who, how, when and why.")
@common
def stops_cmd(opts: dict[str, Any], show_log: bool) -> None:
    """Active emergency stops."""
    fmt = opts["fmt"]
    with desk(opts) as d:
        if show_log:
            entries = d.stop_log()
            if fmt == "json":
                echo_json({"schema_version": 1, "log": entries})
                return
            for e in entries:
                via = f" ({e['via']})" if e.get("via") else ""
                click.echo(
                    f"{_when(e['at'])}  {e['event']:17s} {e['scope']} {e['value']}  "
                    f"by {e['by']}{via}  {e['reason']}"
                )
            return
        stops = d.stops()
    if fmt == "json":
        echo_json({"schema_version": 1, "stops": [s.to_dict() for s in stops]})
        return
    for s in stops:
        click.echo(f"{s.scope:9s} {s.value:20s} since {_when(s.at)} by {s.by} ({s.source}): {s.reason}")
    if not stops:
        click.echo("no active stops")
