"""Write the command reference of docs/cli.md from the click commands (every command and option).

``python scripts/gen_cli_docs.py`` rewrites the section between the markers in place; ``--check``
exits 1 when it is stale (tests/cli/test_cli_reference.py runs the check).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click

from charter.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "cli.md"
START = "<!-- cli-reference: generated from the click commands by scripts/gen_cli_docs.py; do not edit -->\n"
END = "<!-- cli-reference: end -->\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _type(p: click.Parameter) -> str:
    if isinstance(p, click.Option) and p.is_flag:
        return "flag"
    if isinstance(p.type, click.Choice):
        return "|".join(str(c) for c in p.type.choices)
    name = p.type.name.upper()
    return {"TEXT": "TEXT", "PATH": "PATH", "FLOAT": "NUMBER", "INTEGER": "INTEGER"}.get(name, name)


def _default(p: click.Option) -> str:
    value = p.default
    if p.is_flag or value is None or value in ((), False, "") or callable(value):
        return ""
    if type(value).__name__ == "Sentinel":  # click 8.2+: no default given
        return ""
    return f"`{value}`"


def _options(ctx: click.Context, cmd: click.Command) -> list[str]:
    rows = []
    for p in cmd.get_params(ctx):
        if not isinstance(p, click.Option) or p.hidden:
            continue
        names = ", ".join(f"`{n}`" for n in [*p.opts, *p.secondary_opts])
        env = f" (env `${p.envvar}`)" if isinstance(p.envvar, str) else ""
        extra = " Repeatable." if p.multiple else ""
        rows.append(f"| {names} | {_cell(_type(p))} | {_default(p)} | {_cell((p.help or '') + extra)}{env} |")
    return rows


def _command(ctx: click.Context, cmd: click.Command, path: list[str]) -> list[str]:
    name = " ".join(path)
    out = [f"### `{name}`", ""]
    usage = " ".join(cmd.collect_usage_pieces(ctx))
    out += ["```", f"{name} {usage}".rstrip(), "```", ""]
    doc = inspect.cleandoc(cmd.help or "")
    if doc:
        out += [doc, ""]
    args = [p for p in cmd.get_params(ctx) if isinstance(p, click.Argument)]
    if args:
        out.append("Arguments: " + ", ".join(f"`{a.human_readable_name}`" for a in args) + ".")
        out.append("")
    rows = _options(ctx, cmd)
    if rows:
        out += ["| option | value | default | meaning |", "|---|---|---|---|", *rows, ""]
    if isinstance(cmd, click.Group):
        for sub_name in sorted(cmd.list_commands(ctx)):
            sub = cmd.get_command(ctx, sub_name)
            if sub is None or sub.hidden:
                continue
            with click.Context(sub, info_name=sub_name, parent=ctx) as sub_ctx:
                out += _command(sub_ctx, sub, [*path, sub_name])
    return out


def reference() -> str:
    """The generated Markdown: the group's own options, then every command in name order."""
    with click.Context(cli, info_name="charter") as ctx:
        lines = _command(ctx, cli, ["charter"])
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    """Rewrite (or with --check, compare) the reference section of docs/cli.md."""
    text = DOC.read_text("utf-8")
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        print(f"{DOC}: the cli-reference markers are missing", file=sys.stderr)
        return 2
    now = text[start + len(START) : end]
    want = reference()
    if now == want:
        return 0
    if "--check" in argv:
        print("stale (run scripts/gen_cli_docs.py): docs/cli.md", file=sys.stderr)
        return 1
    DOC.write_text(text[: start + len(START)] + want + text[end:], "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
