"""Terminal output: rich tables and stderr progress when rich is installed, plain text if not."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

WIDE = 150  # tables are never squeezed below this width (pipes, CI logs)


class Progress(Protocol):
    """What a suite needs from a progress bar."""

    def step(self, description: str) -> None:
        """Describe the step that starts now (the previous one is done)."""


class _PlainProgress:
    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.n, self.quiet = total, 0, quiet

    def step(self, description: str) -> None:
        self.n += 1
        if not self.quiet:
            print(f"[{self.n}/{self.total}] {description}", file=sys.stderr, flush=True)


class _RichProgress:
    def __init__(self, progress: Any, task: Any) -> None:
        self.progress, self.task, self.started = progress, task, False

    def step(self, description: str) -> None:
        if self.started:
            self.progress.advance(self.task)
        self.started = True
        self.progress.update(self.task, description=description)


class UI:
    """Writes tables and notes to stdout, progress to stderr."""

    def __init__(self, plain: bool = False, quiet: bool = False) -> None:
        self.quiet = quiet
        self.rich = False
        if not plain:
            try:
                from rich.console import Console

                self.out = Console(highlight=False, soft_wrap=True)
                if not self.out.is_terminal or self.out.width < WIDE:
                    self.out = Console(highlight=False, soft_wrap=True, width=WIDE)
                self.err = Console(stderr=True, highlight=False, soft_wrap=True)
                self.rich = True
            except ImportError:
                pass

    def note(self, text: str) -> None:
        """A line of stdout text (stderr when stdout is reserved for JSON)."""
        if self.rich:
            (self.err if self.quiet else self.out).print(text, markup=False)
        else:
            print(text, file=sys.stderr if self.quiet else sys.stdout)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """Print a table (first column left-aligned, the others right-aligned)."""
        if self.rich:
            from rich.table import Table

            t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
            for i, c in enumerate(columns):
                t.add_column(c, justify="left" if i == 0 else "right", no_wrap=True)
            for r in rows:
                t.add_row(*r)
            (self.err if self.quiet else self.out).print(t)
            return
        widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
        f = sys.stderr if self.quiet else sys.stdout
        print(title, file=f)
        fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
        print(fmt.format(*columns), file=f)
        for r in rows:
            print(fmt.format(*r), file=f)

    @contextmanager
    def progress(self, total: int) -> Iterator[Progress]:
        """A progress bar on stderr with `total` steps."""
        if self.rich and self.err.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            with RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.err,
                transient=True,
            ) as p:
                task = p.add_task("starting", total=total)
                rp = _RichProgress(p, task)
                yield rp
                p.update(task, completed=total)
        else:
            yield _PlainProgress(total, quiet=False)
