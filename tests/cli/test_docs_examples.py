"""The examples in the language reference, the diagnostics catalogue and the CLI guide are what
charter really says (docs/examples/check_docs.py runs each through the real command)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.slow
@pytest.mark.parametrize(
    "doc",
    [
        "docs/diagnostics.md",
        "docs/language.md",
        "docs/cli.md",
        "docs/tutorial.md",
        "docs/cel.md",
        "docs/index.md",
        "docs/api.md",
        "docs/humans.md",
        "docs/export.md",
        "docs/semantics.md",
    ],
)
def test_documented_examples_match_real_output(doc: str) -> None:
    run = subprocess.run(
        [sys.executable, "docs/examples/check_docs.py", doc],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert ", 0 failed" in run.stdout.splitlines()[-1]


def _function_rows() -> list[tuple[str, list[str]]]:
    """(function name, examples) of each row of the Functions tables in docs/language.md."""
    import re

    text = (ROOT / "docs" / "language.md").read_text("utf-8")
    section = text.split("### Functions", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and cells[0].startswith("`"):
            examples = [e.replace("\\|", "|") for e in re.findall(r"`((?:[^`\\]|\\.)+)`", cells[3])]
            rows.append((cells[0].strip("`"), examples))
    return rows


def test_every_cel_function_is_documented_with_a_true_example() -> None:
    """docs/language.md lists every function of charter.cel, each example evaluates to true."""
    from charter.cel import compile_condition
    from charter.cel.library import ALL

    rows = _function_rows()
    documented = {name for name, _ in rows}
    assert {f.name for f in ALL} <= documented, sorted({f.name for f in ALL} - documented)
    for name, examples in rows:
        assert examples, name
        for example in examples:
            assert compile_condition(example, {}).evaluate({}) is True, (name, example)
