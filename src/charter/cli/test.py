"""`charter test`: run policy tests (``*_test.yaml``), report results and coverage."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from charter.api import check as compile_check
from charter.cli.output import echo_json
from charter.diagnostics import render_all
from charter.engine.policy import CompiledPolicy
from charter.testing.coverage import Coverage
from charter.testing.loader import TestFile, TestLoadError, discover, load_test_file
from charter.testing.report import case_line, counts, coverage_text, to_json, to_junit
from charter.testing.runner import CaseResult, FileResult, run_file


def _load_policy(path: Path, cache: dict[Path, CompiledPolicy | str]) -> CompiledPolicy | str:
    key = path.resolve()
    if key not in cache:
        res = compile_check([path])
        if res.errors or res.policy is None:
            cache[key] = f"policy {path}: failed to compile\n" + render_all(
                res.errors or res.diagnostics, res.sources
            )
        else:
            cache[key] = res.policy
    return cache[key]


class _Progress:
    """A transient 'testing n/m' counter on a terminal's stderr, redrawn in place and erased at the end."""

    def __init__(self, total: int):
        self.total = total
        self.done = 0
        self.shown = False

    def advance(self) -> None:
        self.done += 1
        width = 30
        filled = width * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (width - filled)
        click.echo(f"\rtesting [{bar}] {self.done}/{self.total}", nl=False, err=True)
        self.shown = True

    def clear(self) -> None:
        """Erase the counter (before a result line, and at the end)."""
        if self.shown:
            click.echo("\r\x1b[2K", nl=False, err=True)
            self.shown = False


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--run", "run_re", metavar="REGEX", help="Only tests and scenarios whose name matches.")
@click.option("-v", "--verbose", is_flag=True, help="List every test and every uncovered branch.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["pretty", "json", "junit"]),
    default="pretty",
    show_default=True,
    help="Output format.",
)
@click.option("--coverage", "want_cov", is_flag=True, help="Report which rules fired and branches seen.")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 100),
    default=None,
    help="Exit 1 when rule coverage is under this percentage (implies --coverage).",
)
def test_cmd(
    paths: tuple[str, ...],
    run_re: str | None,
    verbose: bool,
    fmt: str,
    want_cov: bool,
    threshold: float | None,
) -> None:
    """Run policy tests in *_test.yaml files (directories are searched; default: the current one).

    Exit status: 0 all passed, 1 a test failed or coverage is under --threshold, 2 a test file or
    policy did not load.
    """
    select = None
    if run_re:
        try:
            select = re.compile(run_re)
        except re.error as exc:
            raise click.BadParameter(str(exc), param_hint="--run") from None
    want_cov = want_cov or threshold is not None
    files = discover(paths or ["."])
    load_errors: list[str] = []
    loaded: list[tuple[TestFile, CompiledPolicy]] = []
    cache: dict[Path, CompiledPolicy | str] = {}
    if not files:
        load_errors.append(f"no *_test.yaml files under {', '.join(paths or ('.',))}")
    for f in files:
        try:
            tf = load_test_file(f)
        except TestLoadError as exc:
            load_errors.append(str(exc))
            continue
        pol = _load_policy(tf.policy, cache)
        if isinstance(pol, str):
            if pol not in load_errors:
                load_errors.append(pol)
            continue
        loaded.append((tf, pol))
    covs: dict[str, Coverage] = {}
    results: list[FileResult] = []
    n_cases = sum(len(tf.cases) for tf, _ in loaded)
    show_progress = fmt == "pretty" and sys.stderr.isatty() and n_cases >= 20
    progress = _Progress(n_cases) if show_progress else None

    def on_case(c: CaseResult) -> None:
        if progress is not None:
            progress.advance()
        if fmt == "pretty":
            line = case_line(c, verbose)
            if line is not None:
                if progress is not None:
                    progress.clear()
                click.echo(line)

    try:
        for tf, pol in loaded:
            cov = covs.setdefault(pol.revision, Coverage(pol)) if want_cov else None
            results.append(run_file(tf, pol, cov, select, on_case))
    finally:
        if progress is not None:
            progress.clear()
    c = counts(results)
    under = False
    if want_cov and threshold is not None:
        under = any(cov.totals()["rule_percent"] < threshold for cov in covs.values())
    if fmt == "json":
        data = to_json(results, list(covs.values()), load_errors)
        data["threshold"] = threshold
        data["ok"] = data["ok"] and not under
        echo_json(data)
    elif fmt == "junit":
        click.echo(to_junit(results, load_errors))
    else:
        for msg in load_errors:
            click.echo(f"error: {msg}", err=True)
        if want_cov and covs:
            click.echo(coverage_text(list(covs.values()), verbose))
        summary = (
            f"{c['total']} case{'s' if c['total'] != 1 else ''} in {len(results)} file"
            f"{'s' if len(results) != 1 else ''}: {c['passed']} passed, {c['failed']} failed, "
            f"{c['errors']} errors"
        )
        click.echo(summary)
        if under:
            click.echo(f"rule coverage under the threshold of {threshold:g} %", err=True)
    if load_errors:
        sys.exit(2)
    if c["failed"] or c["errors"] or under:
        sys.exit(1)
