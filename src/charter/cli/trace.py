"""`charter trace list|show|explain|verify|export|checkpoint|ship`: reading, proving, shipping the trace."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys

import click

from charter.cli.output import echo_json
from charter.documents import DocumentError, load_document
from charter.hits import hit_tag
from charter.trace.sink import TraceError

TRACE_HELP = "Trace log: a SQLite file or a postgresql:// URL; default $CHARTER_TRACE or ./charter-trace.db."


def _path(trace: str | None) -> str:
    import os

    from charter.trace.log import default_path

    return trace or os.environ.get("CHARTER_TRACE") or default_path(None)


def _since(text: str | None) -> float | None:
    if not text:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1] in units and text[:-1].isdigit():
        return dt.datetime.now(dt.UTC).timestamp() - int(text[:-1]) * units[text[-1]]
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter("use an ISO time (2026-11-22T10:00) or an age like 30m, 2h, 1d") from None
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()


@click.group("trace")
def trace_cmd() -> None:
    """Read, explain and verify the decision trace."""


@trace_cmd.command("list")
@click.option("--trace", "trace_path", help=TRACE_HELP)
@click.option("--since", help="ISO time or age (30m, 2h, 1d).")
@click.option("--outcome", type=click.Choice(["allow", "require_approval", "escalate", "deny", "halt"]))
@click.option("--agent")
@click.option("--rule")
@click.option("--limit", default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty", show_default=True)
def trace_list(
    trace_path: str | None,
    since: str | None,
    outcome: str | None,
    agent: str | None,
    rule: str | None,
    limit: int,
    fmt: str,
) -> None:
    """Decisions, newest first."""
    from charter.trace.log import query

    try:
        recs = query(
            _path(trace_path), since=_since(since), outcome=outcome, agent=agent, rule=rule, limit=limit
        )
    except (FileNotFoundError, TraceError) as exc:
        raise click.ClickException(str(exc)) from None
    if fmt == "json":
        echo_json({"schema_version": 1, "records": recs})
        return
    for r in recs:
        when = dt.datetime.fromtimestamp(r["at"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        a = r["request"]["action"]
        rules = ",".join(hit_tag(h) for h in r["rules"]) or ("default-deny" if r.get("default_deny") else "")
        click.echo(
            f"{when}  {r['id']}  {r['outcome']:16s} {r['agent']:18s} {a['kind']} {a['target']}  {rules}"
        )
    if not recs:
        click.echo("no matching decisions")


@trace_cmd.command("show")
@click.argument("record_id")
@click.option("--trace", "trace_path", help=TRACE_HELP)
def trace_show(record_id: str, trace_path: str | None) -> None:
    """One record as JSON, with the records that refer to it."""
    from charter.trace.log import get

    try:
        rec, related = get(_path(trace_path), record_id)
    except (FileNotFoundError, TraceError) as exc:
        raise click.ClickException(str(exc)) from None
    if rec is None:
        raise click.ClickException(f"no record {record_id}")
    echo_json({"record": rec, "related": related})


@trace_cmd.command("explain")
@click.argument("record_id")
@click.option("--trace", "trace_path", help=TRACE_HELP)
@click.option("--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty", show_default=True)
def trace_explain(record_id: str, trace_path: str | None, fmt: str) -> None:
    """The story of a decision (or of an approval, escalation or stop record) in plain words."""
    from charter.trace.story import story

    try:
        rec, lines = story(_path(trace_path), record_id)
    except (FileNotFoundError, TraceError) as exc:
        raise click.ClickException(str(exc)) from None
    if rec is None:
        raise click.ClickException(f"no record {record_id}")
    if fmt == "json":
        echo_json(
            {"id": record_id, "kind": rec.get("kind"), "outcome": rec.get("outcome"), "explanation": lines}
        )
    else:
        click.echo("\n".join(lines))


@trace_cmd.command("verify")
@click.option("--trace", "trace_path", help=TRACE_HELP)
@click.option(
    "--checkpoint",
    "cp_files",
    multiple=True,
    type=click.Path(exists=True),
    help="Exported checkpoint JSON kept elsewhere (repeatable).",
)
@click.option("--public-key", help="Trusted Ed25519 public key (base64) for the checkpoints.")
@click.option("--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty", show_default=True)
@click.pass_context
def trace_verify(
    ctx: click.Context, trace_path: str | None, cp_files: tuple[str, ...], public_key: str | None, fmt: str
) -> None:
    """Prove the trace was not edited, cut, reordered or extended in the middle. Exit 1 if it was."""
    from charter.trace.verify import verify_log

    cps = []
    for f in cp_files:
        try:
            cps.append(load_document(f, what="checkpoint", json_only=True))
        except DocumentError as exc:
            raise click.UsageError(str(exc)) from None
    try:
        rep = verify_log(_path(trace_path), cps, public_key)
    except (FileNotFoundError, TraceError) as exc:
        raise click.ClickException(str(exc)) from None
    if fmt == "json":
        echo_json(rep.to_dict())
    elif rep.ok:
        click.echo(
            f"OK: {rep.records} records, chain intact, {rep.checkpoints} checkpoint(s) valid "
            f"({rep.per_s:,.0f} records/s)"
        )
    else:
        click.echo(f"TAMPERED: {rep.records} records checked")
        for p in rep.problems:
            click.echo(f"  - {p}")
    ctx.exit(0 if rep.ok else 1)


@trace_cmd.command("checkpoint")
@click.option("--trace", "trace_path", help=TRACE_HELP)
@click.option("--out", type=click.Path(), help="Also write the checkpoint JSON here (keep it elsewhere).")
def trace_checkpoint(trace_path: str | None, out: str | None) -> None:
    """Sign the current length and head of the chain (Ed25519)."""
    from charter.trace.log import TraceLog

    try:
        log = TraceLog(_path(trace_path))
        try:
            cp = log.checkpoint()
        finally:
            log.close()
    except TraceError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # the checkpoint could not be stored (server gone, file read-only)
        raise click.ClickException(f"cannot checkpoint {log.display}: {type(exc).__name__}: {exc}") from None
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(cp, f, indent=2)
    echo_json(cp)


@trace_cmd.command("export")
@click.option("--trace", "trace_path", help=TRACE_HELP)
@click.option("--jsonl", "out", type=click.Path(), default="-", show_default=True)
def trace_export(trace_path: str | None, out: str) -> None:
    """Every record as JSON lines (seq, prev, hash, body)."""
    from charter.trace.log import export_jsonl

    with contextlib.ExitStack() as stack:
        fh = sys.stdout if out == "-" else stack.enter_context(open(out, "w", encoding="utf-8"))
        try:
            n = export_jsonl(_path(trace_path), fh)
        except (FileNotFoundError, TraceError) as exc:
            raise click.ClickException(str(exc)) from None
    if out != "-":
        click.echo(f"{n} records written to {out}", err=True)


@trace_cmd.command("ship")
@click.option("--trace", "trace_path", help=TRACE_HELP)
@click.option(
    "--to",
    "target",
    required=True,
    help="Where to send: otlp:http(s)://HOST:4318/v1/logs or jsonl:http(s)://HOST/PATH (as serve --export).",
)
@click.option(
    "--policy",
    "policy_path",
    required=True,
    type=click.Path(exists=True),
    help="Policy whose mask/hash declarations are applied before a record leaves.",
)
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Key of the hash masks (as serve --export-key-file); default: random per run.",
)
@click.option(
    "--cursor",
    "cursor_path",
    type=click.Path(dir_okay=False),
    help="File keeping the last shipped record (written per acknowledged batch); a restart goes on from it.",
)
@click.option("--follow", is_flag=True, help="Keep shipping new records until SIGINT/SIGTERM.")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--poll",
    "poll_s",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.01, 3600),
    help="Seconds between looks for new records.",
)
@click.option(
    "--give-up-after",
    "give_up_s",
    type=click.FloatRange(0),
    help="Stop (exit 1) after this many seconds of failed sends of one batch; default: retry forever.",
)
@click.option("--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty", show_default=True)
@click.pass_context
def trace_ship(
    ctx: click.Context,
    trace_path: str | None,
    target: str,
    policy_path: str,
    key_file: str | None,
    cursor_path: str | None,
    follow: bool,
    batch_size: int,
    poll_s: float,
    give_up_s: float | None,
    fmt: str,
) -> None:
    """Send the trace's decisions, verified and masked, to an OTLP or JSONL target (out of process).

    Exit 0 when caught up or stopped by a signal (the cursor is saved), 1 when a record failed
    verification (refused, not shipped), the target refused a batch or --give-up-after ran out.
    """
    import math
    import signal

    # click.FloatRange lets NaN through (every comparison with it is False): refuse it here.
    for name, value in (("--poll", poll_s), ("--give-up-after", give_up_s)):
        if value is not None and not math.isfinite(value):
            raise click.BadParameter(f"{value} is not a finite number of seconds", param_hint=name)

    import charter
    from charter.export import ExportError, Masker, open_sink
    from charter.export.ship import Shipper

    try:
        policy = charter.load(policy_path)
    except charter.Error as exc:
        raise click.ClickException(f"cannot load the policy {policy_path}: {exc}") from None
    from pathlib import Path

    key = Path(key_file).read_bytes() if key_file else None
    try:
        sink = open_sink(target)
    except ExportError as exc:
        raise click.UsageError(str(exc)) from None
    shipper = Shipper(
        _path(trace_path),
        sink,
        policy.masks,
        masker=Masker(key),
        cursor=cursor_path,
        batch_size=batch_size,
        poll_s=poll_s,
        give_up_s=give_up_s,
    )
    old = {s: signal.signal(s, lambda *_: shipper.stop()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stats = shipper.run(follow=follow)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        sink.close()
    if fmt == "json":
        echo_json(stats.to_dict())
    else:
        click.echo(
            f"shipped {stats.shipped} decisions in {stats.batches} batches to {stats.target} "
            f"(cursor at record {stats.cursor_seq}, {stats.events_skipped} event records passed over, "
            f"{stats.retries} retries)"
        )
        if stats.refused:
            click.echo(f"REFUSED (not shipped): {stats.refused}", err=True)
        if stats.error:
            click.echo(f"error: {stats.error}", err=True)
    ctx.exit(0 if stats.refused is None and stats.error is None else 1)
