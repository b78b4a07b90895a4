"""The grammar shipped in the package is byte-identical to grammar/charter.lark."""

from pathlib import Path

from charter.syntax import grammar_text


def test_packaged_grammar_matches_reference(root: Path) -> None:
    assert grammar_text() == (root / "grammar" / "charter.lark").read_text("utf-8")
