"""`charter fmt`: print, check or rewrite policy files in the one canonical style."""

from __future__ import annotations

import difflib
from pathlib import Path

import click

from charter.cli.output import style_diag, use_color
from charter.cli.stdin import STDIN_ARG, STDIN_NAME, read_policy_stdin
from charter.compiler.load import MAX_FILES, POLICY_SUFFIX
from charter.files import FileError, policy_files, read_bounded
from charter.syntax.parser import MAX_FILE_BYTES, decode
from charter.syntax.printer import format_source


def _expand(paths: tuple[str, ...]) -> tuple[list[Path], list[str]]:
    """The files to format (the policy loader's listing of a directory) and what cannot be read."""
    files: list[Path] = []
    missing: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found, problems = policy_files(p, POLICY_SUFFIX, MAX_FILES)
            files.extend(found)
            missing.extend(str(exc) for exc in problems)
        elif p.is_file() or p.is_symlink():
            files.append(p)
        else:
            missing.append(raw)
    return files, missing


@click.command("fmt")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-w", "--write", is_flag=True, help="Rewrite the files in place.")
@click.option("--check", "check_only", is_flag=True, help="Exit 1 and list files that would change.")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff of the changes.")
@click.pass_context
def fmt_cmd(
    ctx: click.Context, paths: tuple[str, ...], write: bool, check_only: bool, show_diff: bool
) -> None:
    """Format policy files (directories expand to their *.charter files).

    With one file and no option, print the formatted text; '-' formats standard input to standard
    output (an editor's format-on-save). With -w, name each file rewritten and count the unchanged.
    Exit status: 0 done (or nothing to change), 1 files would change with --check, 2 a file does
    not parse or cannot be read.
    """
    color = use_color(ctx)
    if STDIN_ARG in paths:
        if len(paths) > 1 or write or check_only or show_diff:
            raise click.UsageError(
                "'-' (standard input) is formatted to standard output, alone and without options"
            )
        text, problems = read_policy_stdin()
        out, diags = format_source(text, STDIN_NAME) if text is not None else (None, problems)
        if out is None:
            for d in diags:
                click.echo(style_diag(d, text, color), err=True)
            ctx.exit(2)
        click.echo(out, nl=False)
        return
    files, missing = _expand(paths)
    failed = bool(missing)
    for raw in missing:
        click.echo(raw if " " in raw else f"{raw}: no such file or directory", err=True)
    if not files and not missing:
        click.echo("no policy files found", err=True)
        ctx.exit(2)
    printing = not (write or check_only or show_diff)
    if printing and len(files) > 1:
        raise click.UsageError("several files: use -w, --check or --diff")
    changed: list[str] = []
    unchanged = 0
    for path in files:
        shown = str(path)
        try:
            data = read_bounded(path, MAX_FILE_BYTES)
        except FileError as exc:
            click.echo(f"{shown}: {exc}", err=True)
            failed = True
            continue
        text, problems = decode(shown, data)
        if text is None:
            for d in problems:
                click.echo(style_diag(d, None, color), err=True)
            failed = True
            continue
        out, diags = format_source(text, shown)
        if out is None:
            for d in diags:
                click.echo(style_diag(d, text, color), err=True)
                click.echo(err=True)
            failed = True
            continue
        if printing:
            click.echo(out, nl=False)
            continue
        if out == text:
            unchanged += 1
            continue
        changed.append(shown)
        if show_diff:
            diff = difflib.unified_diff(
                text.splitlines(keepends=True),
                out.splitlines(keepends=True),
                fromfile=f"a/{shown}",
                tofile=f"b/{shown}",
            )
            click.echo("".join(diff), nl=False)
        if write:
            path.write_text(out, encoding="utf-8")
            click.echo(f"reformatted {shown}", err=True)
        elif check_only and not show_diff:
            click.echo(shown)
    if write:
        n = len(changed)
        done = f"{n} file{'s' if n != 1 else ''} reformatted, " if n else ""
        click.echo(f"{done}{unchanged} file{'s' if unchanged != 1 else ''} unchanged", err=True)
    if check_only and changed:
        n = len(changed)
        click.echo(f"{n} file{'s' if n != 1 else ''} would be reformatted", err=True)
    if failed:
        ctx.exit(2)
    if check_only and changed:
        ctx.exit(1)
