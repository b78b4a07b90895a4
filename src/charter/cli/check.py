"""`charter check`: parse, typecheck and lint policy files; report diagnostics for people or CI."""

from __future__ import annotations

import click

from charter.api import check as compile_check
from charter.cli.lintconfig import LintConfigError, configure
from charter.cli.output import echo_json, github_annotation, style_diag, use_color
from charter.cli.sarif import to_junit, to_sarif
from charter.cli.stdin import STDIN_ARG, STDIN_NAME, read_policy_stdin
from charter.compiler.pipeline import CompileResult, compile_text
from charter.diagnostics import Diagnostic


@click.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["pretty", "json", "github", "sarif", "junit"]),
    default="pretty",
    show_default=True,
    help="Output format.",
)
@click.option("--strict", is_flag=True, help="Exit 1 when there are warnings.")
@click.pass_context
def check_cmd(ctx: click.Context, paths: tuple[str, ...], fmt: str, strict: bool) -> None:
    """Check policy files or directories ('-': one policy read from standard input, named <stdin>).

    Exit status: 0 clean, 1 warnings with --strict, 2 errors. Lint levels come from [tool.charter]
    in pyproject.toml or .charter.yaml (docs/lint.md); '# charter: ignore CODE -- reason' suppresses.
    """
    if STDIN_ARG in paths:
        if len(paths) > 1:
            raise click.UsageError("'-' (standard input) cannot be combined with other paths")
        text, problems = read_policy_stdin()
        result = (
            compile_text(text, STDIN_NAME)
            if text is not None
            else CompileResult(policy=None, diagnostics=problems, sources={})
        )
        paths = (".",)  # lint configuration: from the working directory
    else:
        result = compile_check(list(paths))
    try:
        diags: list[Diagnostic] = configure(paths, result.diagnostics, result.sources)
    except LintConfigError as exc:
        raise click.UsageError(str(exc)) from None
    errors = [d for d in diags if d.is_error]
    warnings = [d for d in diags if not d.is_error]
    if fmt == "json":
        echo_json(
            {
                "schema_version": 1,
                "ok": not errors and not (strict and warnings),
                "files": sorted(result.sources),
                "revision": result.policy.revision if result.policy else None,
                "errors": len(errors),
                "warnings": len(warnings),
                "diagnostics": [d.to_dict() for d in diags],
            }
        )
    elif fmt == "sarif":
        echo_json(to_sarif(diags, result.sources))
    elif fmt == "junit":
        click.echo(to_junit(diags, result.sources))
    elif fmt == "github":
        for d in diags:
            click.echo(github_annotation(d))
    else:
        color = use_color(ctx)
        for d in diags:
            click.echo(style_diag(d, result.sources.get(d.span.path), color))
            click.echo()
        files = len(result.sources)
        rules = (
            len(result.policy.rules)
            + len(result.policy.budgets)
            + len(result.policy.rates)
            + len(result.policy.tripwires)
            + len(result.policy.result_checks)
            if result.policy
            else 0
        )
        summary = (
            f"{files} file{'s' if files != 1 else ''} checked: {len(errors)} error"
            f"{'s' if len(errors) != 1 else ''}, {len(warnings)} warning{'s' if len(warnings) != 1 else ''}"
        )
        if result.policy is not None:
            summary += f"; {rules} rules, revision {result.policy.revision}"
        click.echo(summary, err=bool(errors))
    if errors:
        ctx.exit(2)
    if strict and warnings:
        ctx.exit(1)
