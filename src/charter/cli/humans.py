"""`charter approvals|escalations|stop|resume|stops`: people acting on gates, escalations and stops."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import click

from charter.approvals import HumanError
from charter.cli.output import echo_json

STORE_HELP = "State store URL shared with the engine (sqlite:///path.db, redis://..., postgresql://...)."


def _engine(policy: str, store_url: str) -> Any:
    from charter.api import check
    from charter.engine.engine import Engine
    from charter.state import StoreError, open_store

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
    return Engine(result.policy, store=store)


def common(f: Callable[..., Any]) -> Callable[..., Any]:
    """--policy, --store, --format on every human command."""
    f = click.option(
        "--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty", show_default=True
    )(f)
    f = click.option("--store", "store_url", envvar="CHARTER_STORE", required=True, help=STORE_HELP)(f)
    f = click.option(
        "--policy",
        default="policies",
        show_default=True,
        envvar="CHARTER_POLICY",
        help="Policy file or directory (for groups and operators).",
    )(f)
    return f


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _run(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except HumanError as exc:
        raise click.ClickException(str(exc)) from None


def _show_record(doc: dict[str, Any]) -> None:
    for key in ("id", "status", "outcome", "group", "target", "requester", "decision_id"):
        if doc.get(key) is not None:
            click.echo(f"{key:12s} {doc[key]}")
    a = doc.get("action", {})
    click.echo(f"{'action':12s} {a.get('kind')} {a.get('target')} by {a.get('agent')} args={a.get('args')}")
    if "expires_at" in doc:
        click.echo(f"{'expires':12s} {_when(doc['expires_at'])}")
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
        click.echo(f"  {_when(h['at'])}  {h['event']:16s} {h.get('by') or ''}  {h.get('note') or ''}")


# ---- approvals ------------------------------------------------------------------------------------
@click.group("approvals")
def approvals_cmd() -> None:
    """List and answer approval requests (human gates)."""


@approvals_cmd.command("list")
@common
@click.option("--status", type=click.Choice(["pending", "approved", "denied", "expired", "redeemed"]))
def approvals_list(policy: str, store_url: str, fmt: str, status: str | None) -> None:
    """Approval requests, newest first."""
    docs = _run(lambda: _engine(policy, store_url).approvals.list(status))
    if fmt == "json":
        echo_json({"schema_version": 1, "approvals": docs})
        return
    for d in docs:
        a = d["action"]
        n = len(d["approvals"])
        need = max(g["quorum"] for g in d["gates"])
        click.echo(
            f"{d['id']}  {d['status']:9s} {a['target']} by {a['agent']}  {n}/{need} of {d['group']}  "
            f"expires {_when(d['expires_at'])}"
        )
    if not docs:
        click.echo("no approval requests")


@approvals_cmd.command("show")
@click.argument("approval_id")
@common
def approvals_show(approval_id: str, policy: str, store_url: str, fmt: str) -> None:
    """One approval request with its status history."""
    doc = _run(lambda: _engine(policy, store_url).approvals.get(approval_id))
    echo_json(doc) if fmt == "json" else _show_record(doc)


def _answer(verb: str) -> Callable[..., None]:
    @approvals_cmd.command(verb)
    @click.argument("approval_id")
    @click.option("--as", "who", required=True, help="Your name (must be in the approver group).")
    @click.option("--note", default="", help="Why.")
    @common
    def cmd(approval_id: str, who: str, note: str, policy: str, store_url: str, fmt: str) -> None:
        engine = _engine(policy, store_url)
        fn = engine.approvals.approve if verb == "approve" else engine.approvals.deny
        doc = _run(lambda: fn(approval_id, who, note))
        if fmt == "json":
            echo_json(doc)
        else:
            click.echo(f"{approval_id}: {doc['status']} ({len(doc['approvals'])} approval(s))")

    cmd.__doc__ = f"{verb.capitalize()} an approval request as --as NAME."
    return cmd


_answer("approve")
_answer("deny")


# ---- escalations ----------------------------------------------------------------------------------
@click.group("escalations")
def escalations_cmd() -> None:
    """List and answer escalations."""


@escalations_cmd.command("list")
@common
@click.option("--status", type=click.Choice(["open", "allowed", "denied", "fallback", "redeemed"]))
def escalations_list(policy: str, store_url: str, fmt: str, status: str | None) -> None:
    """Escalations, newest first (moved up their chain as time passes)."""
    docs = _run(lambda: _engine(policy, store_url).escalations.list(status))
    if fmt == "json":
        echo_json({"schema_version": 1, "escalations": docs})
        return
    for d in docs:
        a = d["action"]
        click.echo(
            f"{d['id']}  {d['status']:8s} {d['severity']:6s} {a['target']} by {a['agent']}  "
            f"-> {d.get('target') or d.get('outcome')}"
        )
    if not docs:
        click.echo("no escalations")


@escalations_cmd.command("show")
@click.argument("escalation_id")
@common
def escalations_show(escalation_id: str, policy: str, store_url: str, fmt: str) -> None:
    """One escalation: target, chain, the signals side by side, history."""
    doc = _run(lambda: _engine(policy, store_url).escalations.get(escalation_id))
    echo_json(doc) if fmt == "json" else _show_record(doc)


@escalations_cmd.command("answer")
@click.argument("escalation_id")
@click.argument("verdict", type=click.Choice(["allow", "deny"]))
@click.option("--as", "who", required=True, help="Your name (the current target or above).")
@click.option("--note", default="")
@common
def escalations_answer(
    escalation_id: str, verdict: str, who: str, note: str, policy: str, store_url: str, fmt: str
) -> None:
    """Answer an escalation allow or deny."""
    doc = _run(lambda: _engine(policy, store_url).escalations.answer(escalation_id, who, verdict, note))
    echo_json(doc) if fmt == "json" else click.echo(f"{escalation_id}: {doc['status']}")


# ---- stops ------------------------------------------------------------------------------------------
@click.command("stop")
@click.option(
    "--scope",
    required=True,
    type=click.Choice(["global", "workflow", "agent", "tool", "run", "role", "tenant"]),
)
@click.option("--value", default="*", help="Which workflow/agent/tool... ('*' for global).")
@click.option("--reason", required=True)
@click.option("--as", "who", required=True, help="Your name (must be an operator).")
@common
def stop_cmd(scope: str, value: str, reason: str, who: str, policy: str, store_url: str, fmt: str) -> None:
    """Emergency stop: every decision this scope covers is halt, in every process sharing the store."""
    rec = _run(lambda: _engine(policy, store_url).stops.stop(scope, value, reason, who))
    if fmt == "json":
        echo_json({"scope": rec.scope, "value": rec.value, "reason": rec.reason, "by": rec.by, "at": rec.at})
    else:
        click.echo(f"stopped {rec.scope} {rec.value}: {rec.reason} (by {rec.by})")


@click.command("resume")
@click.option("--scope", required=True)
@click.option("--value", default="*")
@click.option("--reason", default="")
@click.option("--as", "who", required=True, help="Your name (must be an operator).")
@common
def resume_cmd(scope: str, value: str, reason: str, who: str, policy: str, store_url: str, fmt: str) -> None:
    """Ask to resume a stopped scope; it resumes once enough distinct operators asked."""
    res = _run(lambda: _engine(policy, store_url).stops.resume(scope, value, who, reason))
    if fmt == "json":
        echo_json(res)
    elif res["resumed"]:
        click.echo(f"resumed {scope} {value} (by {', '.join(res['operators'])})")
    else:
        click.echo(f"resume of {scope} {value} requested by {who}: {res['have']} of {res['need']} operators")


@click.command("stops")
@common
@click.option("--log", "show_log", is_flag=True, help="Every stop and resume, with who, when and why.")
def stops_cmd(policy: str, store_url: str, fmt: str, show_log: bool) -> None:
    """Active emergency stops."""
    engine = _engine(policy, store_url)
    if show_log:
        entries = engine.stops.log()
        if fmt == "json":
            echo_json({"schema_version": 1, "log": entries})
        for e in entries if fmt != "json" else []:
            click.echo(
                f"{_when(e['at'])}  {e['event']:17s} {e['scope']} {e['value']}  by {e['by']}  {e['reason']}"
            )
        return
    stops = engine.stops.list()
    if fmt == "json":
        echo_json(
            {
                "schema_version": 1,
                "stops": [s.to_dict() for s in stops],
            }
        )
        return
    for s in stops:
        click.echo(f"{s.scope:9s} {s.value:20s} since {_when(s.at)} by {s.by} ({s.source}): {s.reason}")
    if not stops:
        click.echo("no active stops")
