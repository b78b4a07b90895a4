"""`charter eval`: decide one request against a policy and print the decision (and why)."""

from __future__ import annotations

import click

from charter.api import check as compile_check
from charter.cli.output import echo_json, style_diag, use_color
from charter.cli.stores import resolve_store, store_option
from charter.documents import DocumentError, load_document
from charter.engine.engine import Engine
from charter.engine.explain import explain
from charter.engine.validate import RequestError, validate_request
from charter.enums import Outcome
from charter.hits import hit_line

_COLORS = {
    Outcome.ALLOW: "green",
    Outcome.REQUIRE_APPROVAL: "yellow",
    Outcome.ESCALATE: "magenta",
    Outcome.DENY: "red",
    Outcome.HALT: "red",
}


def _read_request(spec: str) -> object:
    """The request document (JSON or YAML) through the one bounded reader: size, depth, no aliases."""
    try:
        return load_document(spec, what="request")
    except DocumentError as exc:
        raise click.UsageError(str(exc)) from None


@click.command("eval")
@click.argument("policy_path", type=click.Path())
@click.option("--request", "request_spec", required=True, help="Request file (JSON or YAML), or - for stdin.")
@click.option("--explain", "show_explain", is_flag=True, help="Say why, in plain words.")
@click.option("--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty", show_default=True)
@click.option(
    "--fail-on",
    type=click.Choice(["not-allow", "deny", "never"]),
    default="never",
    show_default=True,
    help="Exit 1 when the decision is not allow (or is deny/halt).",
)
@store_option
@click.pass_context
def eval_cmd(
    ctx: click.Context,
    policy_path: str,
    request_spec: str,
    show_explain: bool,
    fmt: str,
    fail_on: str,
    store_url: str,
) -> None:
    """Decide one request against POLICY_PATH (a file or directory).

    Exit status: 0, or 1 when --fail-on matches, 2 on a load or request error.
    """
    result = compile_check([policy_path])
    if result.errors or result.policy is None:
        color = use_color(ctx)
        for d in result.errors:
            click.echo(style_diag(d, result.sources.get(d.span.path), color), err=True)
        click.echo(f"cannot load the policy: {len(result.errors)} error(s)", err=True)
        ctx.exit(2)
    try:
        raw = _read_request(request_spec)
    except OSError as exc:
        click.echo(f"error: cannot read request {request_spec}: {exc.strerror}", err=True)
        ctx.exit(2)
    try:
        req = validate_request(raw)
    except RequestError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    from charter.state import StoreError, open_store

    try:
        store = open_store(resolve_store(store_url))
    except (ValueError, StoreError) as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    engine = Engine(result.policy, store=store)
    decision = engine.decide(req)
    if fmt == "json":
        data = decision.to_dict()
        if show_explain:
            data["explanation"] = explain(decision.to_dict(), req.to_dict())
        echo_json(data)
    else:
        color = use_color(ctx)
        label = decision.outcome.value.upper().replace("_", " ")
        click.echo(click.style(label, fg=_COLORS[decision.outcome], bold=True) if color else label)
        for hit in decision.rules:
            click.echo(f"  {hit_line(hit)}")
        if decision.default_deny:
            click.echo("  default deny: no rule permits this action")
        if show_explain:
            click.echo()
            for line in explain(decision.to_dict(), req.to_dict()):
                click.echo(line)
    store.close()
    failing = {
        "not-allow": decision.outcome is not Outcome.ALLOW,
        "deny": decision.outcome in (Outcome.DENY, Outcome.HALT),
        "never": False,
    }[fail_on]
    ctx.exit(1 if failing else 0)
