"""Terminal output for the demo: rich when colour is welcome, plain words always readable."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from charter.extras import missing_extra

try:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text
except ImportError as _exc:  # an optional dependency: name the extra to install
    raise missing_extra("demo", "the terminal demo", _exc) from _exc

from charter.engine.decision import Decision
from charter.enums import HitKind
from charter.hits import failed, hit_line

STYLE = {
    "allow": "green",
    "require_approval": "yellow",
    "escalate": "magenta",
    "deny": "red",
    "halt": "bold red",
}
LABEL = {
    "allow": "ALLOW",
    "require_approval": "NEEDS APPROVAL",
    "escalate": "ESCALATE",
    "deny": "DENY",
    "halt": "HALT",
}


def make_console() -> Console:
    """A console: colour on a terminal unless NO_COLOR is set; 100 columns when piped."""
    tty = sys.stdout.isatty()
    return Console(
        highlight=False,
        no_color=bool(os.environ.get("NO_COLOR")) or not tty,
        width=None if tty else 100,
        emoji=False,
    )


def clock_text(t: float | None) -> str:
    """HH:MM:SS (UTC) or blanks."""
    if t is None:
        return "        "
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S")


def args_text(args: Mapping[str, Any]) -> str:
    """Arguments in one short line."""
    if not args:
        return ""
    parts = []
    for k, v in args.items():
        s = json.dumps(v) if isinstance(v, str) else (f"{v:,.2f}" if isinstance(v, float) else str(v))
        parts.append(f"{k}={s}")
    text = ", ".join(parts)
    return f"({text[:60]}…)" if len(text) > 60 else f"({text})"


class Out:
    """Everything the story prints goes through here."""

    def __init__(self, console: Console | None = None):
        self.c = console or make_console()

    def title(self, text: str, sub: str) -> None:
        self.c.rule(Text(text, style="bold"))
        self.c.print(sub)

    def chapter(self, n: int, text: str) -> None:
        self.c.print()
        self.c.rule(Text(f"{n}. {text}", style="bold cyan"), align="left")

    def say(self, text: str, style: str = "italic") -> None:
        self._row(None, Text(""), Text(text, style=style))

    def _row(self, t: float | None, who: Text, what: Text) -> None:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=10, no_wrap=True)
        grid.add_column(width=16, no_wrap=True)
        grid.add_column(ratio=1)
        grid.add_row(Text("  " + clock_text(t) if t is not None else "", style="dim"), who, what)
        self.c.print(grid)

    def decision(
        self,
        t: float | None,
        agent: str,
        target: str,
        args: Mapping[str, Any],
        d: Decision,
        cost: Mapping[str, float] | None,
        ok: bool,
    ) -> None:
        o = d.outcome.value
        what = Text()
        what.append(f"{target} {args_text(args)}")
        if cost:
            what.append("  est. " + ", ".join(f"{v:g} {k}" for k, v in cost.items()), style="dim")
        what.append("  -> ")
        what.append(LABEL[o], style=STYLE[o])
        if not ok:
            what.append("  (UNEXPECTED)", style="bold red")
        rules = [h for h in d.rules if not h.shadow]
        for h in rules:
            what.append(f"\n{hit_line(h)}", style="red" if failed(h) else "dim")
        if not rules and d.default_deny:
            what.append("\ndefault deny: no rule permits it", style="dim")
        for b in d.boundaries:
            if b.kind == HitKind.BUDGET and not b.ok:
                what.append(
                    f"\nbudget {b.id}: {b.used:g} used + {b.amount:g} asked > {b.limit:g} {b.unit}",
                    style="red",
                )
            if b.kind == HitKind.TRIPWIRE and not b.ok:
                what.append(f"\ntripwire {b.id}: {b.used:g} calls, limit {b.limit:g}", style="red")
        self._row(t, Text(agent, style="bold"), what)

    def human(self, t: float | None, who: str, text: str) -> None:
        self._row(t, Text(who, style="bold blue"), Text(text))

    def command(self, cmd: str, lines: list[str]) -> None:
        self.c.print(Text(f"  $ {cmd}", style="bold"))
        for ln in lines:
            self.c.print(Text(f"    {ln}"))

    def summary(self, counts: Mapping[str, int], problems: list[str], backend: str) -> None:
        table = Table(title="Decisions by outcome", show_lines=False)
        table.add_column("outcome")
        table.add_column("count", justify="right")
        for o, label in LABEL.items():
            table.add_row(Text(label, style=STYLE[o]), str(counts.get(o, 0)))
        self.c.print()
        self.c.print(table)
        if problems:
            self.c.print(
                Text(
                    f"DEMO FAILED ({backend}): {len(problems)} step(s) did not go as scripted",
                    style="bold red",
                )
            )
            for p in problems:
                self.c.print(Text(f"  - {p}", style="red"))
        else:
            done = f"Demo complete: every step decided as scripted ({backend})."
            self.c.print(Text(done, style="bold green"))
