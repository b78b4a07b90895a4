"""The CEL catalogue (completion, hover, docs/cel.md) against the real checker and the language
reference: every entry's example compiles in a rule of the docs preamble, every function the
reference lists is in the catalogue, and docs/cel.md is generated from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from charter.api import check
from charter.editing.cel_catalog import CATALOG, markdown

ROOT = Path(__file__).parents[2]
PREAMBLE = (ROOT / "docs" / "examples" / "preamble.charter").read_text()


@pytest.mark.parametrize("entry", CATALOG, ids=[f.name for f in CATALOG])
def test_each_example_compiles(entry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rule = f'forbid ex {{\n  action call payments.transfer\n  when {entry.example}\n  reason "x"\n}}\n'
    (tmp_path / "p.charter").write_text(PREAMBLE + "\n" + rule)
    result = check([tmp_path / "p.charter"])
    assert result.errors == [], [str(d.span) + " " + d.message for d in result.errors]
    assert re.search(rf"\b{entry.name}\b", entry.example)


def test_the_language_reference_lists_nothing_the_catalogue_lacks() -> None:
    text = (ROOT / "docs" / "language.md").read_text()
    table = text[text.index("### Supported CEL") : text.index("## Types")]
    rows = [r for r in table.splitlines() if r.startswith(("| functions", "| methods", "| macros"))]
    listed = {w for r in rows for w in re.findall(r"`([A-Za-z_]+)`", r)}
    assert listed and listed <= {f.name for f in CATALOG}


def test_docs_page_is_generated_from_the_catalogue() -> None:
    assert (ROOT / "docs" / "cel.md").read_text() == markdown(), (
        "regenerate: python -m charter.editing.cel_catalog"
    )
