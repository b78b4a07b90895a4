"""The tree-less parse (charter.syntax.lalr) builds exactly the AST the parse tree + ToAst builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from tests.syntax.gen import random_policy

from charter.syntax import parse_text
from charter.syntax.parser import _fast_module, _parser
from charter.syntax.transform import ToAst

ROOT = Path(__file__).resolve().parents[2]
TOPS = ("policies", "docs", "tests", "examples")
FILES = sorted(p for top in TOPS for p in ROOT.glob(f"{top}/**/*.charter"))
GENERATED = 300


def differences(a: Any, b: Any, path: str = "$") -> str | None:
    """Where two ASTs differ, spans and value types included (AST equality ignores spans)."""
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, BaseModel):
        for name in type(a).model_fields:
            found = differences(getattr(a, name), getattr(b, name), f"{path}.{name}")
            if found:
                return found
        return None
    if isinstance(a, tuple | list):
        if len(a) != len(b):
            return f"{path}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = differences(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


def _both(text: str, path: str) -> tuple[Any, Any]:
    return _fast_module(text, path), ToAst(path).transform(_parser().parse(text))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_files(path: Path) -> None:
    text = path.read_text("utf-8", errors="replace")
    full = parse_text(text, str(path))
    if full.module is None:
        assert _fast_module(text, str(path)) is None  # errors are left to the full parser
        return
    fast, tree = _both(text, str(path))
    assert fast is not None, "a valid file must take the fast path"
    assert differences(fast, tree) is None


def test_generated() -> None:
    for seed in range(GENERATED):
        g = random_policy(seed)
        fast, tree = _both(g.text, "<gen>")
        assert fast is not None, (seed, g.text)
        assert differences(fast, tree) is None, (seed, differences(fast, tree), g.text)


def test_errors_take_the_full_parser() -> None:
    text = "policy p\n\nagent a {\n  parent b\n  parent c\n}\n"
    assert _fast_module(text, "<t>") is None  # a problem found while building the AST
    assert [d.code.value for d in parse_text(text, "<t>").diagnostics] == ["E107"]
    assert _fast_module("policy p\npermit {", "<t>") is None
