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
