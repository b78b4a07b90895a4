"""Generate editors/charter.tmLanguage.json; its keyword list comes from the Lark grammar's literals."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRAMMAR = ROOT / "grammar" / "charter.lark"
OUT = ROOT / "editors" / "charter.tmLanguage.json"


def keywords(grammar: str) -> list[str]:
    """Every word literal ("permit", "require", ...) in the grammar, sorted."""
    body = "\n".join(line.split("//", 1)[0] for line in grammar.splitlines())
    return sorted({w for w in re.findall(r'"([a-z][a-z-]*)"i?', body)})


def language(words: list[str]) -> dict[str, object]:
    """The TextMate grammar."""
    alt = "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "Charter",
        "scopeName": "source.charter",
        "fileTypes": ["charter"],
        "patterns": [
            {"name": "comment.line.number-sign.charter", "match": "#.*$"},
            {"name": "string.quoted.double.charter", "begin": '"', "end": '"',
             "patterns": [{"name": "constant.character.escape.charter", "match": "\\\\."}]},
            {"name": "constant.numeric.charter", "match": "\\b\\d+(\\.\\d+)?(ms|s|m|h|d)?\\b"},
            {"name": "keyword.control.charter", "match": f"(?<![\\w.-])({alt})(?![\\w-])"},
            {"name": "keyword.operator.charter", "match": "&&|\\|\\||==|!=|<=|>=|<|>|!"},
        ],
        "repository": {},
        "x-keywords": words,
    }


def main() -> int:
    """Write the grammar, or with --check exit 1 when the file is out of date."""
    text = json.dumps(language(keywords(GRAMMAR.read_text(encoding="utf-8"))), indent=2) + "\n"
    if "--check" in sys.argv:
        ok = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        print("up to date" if ok else f"{OUT} is out of date: run scripts/gen_textmate.py")
        return 0 if ok else 1
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
