"""charter.editing without a server: positions, cursor context, the symbol index (and plugging a
new declaration kind into it), quick fixes applied to real diagnostics, semantic tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.api import check
from charter.diagnostics import Diagnostic
from charter.editing import Project, SymbolKind
from charter.editing.context import BlockKind, analyse
from charter.editing.fixes import Fix, fixes
from charter.editing.symbols import _EXTRACTORS, CEL_NAME_KINDS, Occurrence, SymbolIndex, Walk, extractor
from charter.editing.text import LineIndex
from charter.editing.tokens import TokenType, tokens
from charter.enums import RuleKind
from charter.syntax import ast, parse_text

ROOT = Path(__file__).parents[2]
PREAMBLE = (ROOT / "docs" / "examples" / "preamble.charter").read_text()


def test_line_index_round_trips_and_clamps() -> None:
    text = "ab\n😋x\n\nlast"
    lines = LineIndex(text)
    for offset in range(len(text) + 1):
        assert lines.offset(*lines.position(offset)) == offset
    assert lines.position(10**6) == lines.position(len(text))
    assert lines.offset(99, 1) == len(text) and lines.offset(2, 99) == text.index("\n\n")
    assert lines.line_text(2) == "😋x" and lines.line_text(0) == ""


def test_cursor_context_survives_broken_text() -> None:
    text = "policy p\n\nrequire approval pay {\n  action call payments.transfer\n  when args.am"
    ctx = analyse(text, len(text))
    assert (ctx.block, ctx.rule, ctx.in_condition, ctx.condition) == (
        BlockKind.RULE,
        RuleKind.APPROVAL,
        True,
        "args.am",
    )
    inside_string = analyse('permit r { reason "half', len('permit r { reason "ha'))
    assert inside_string.in_literal
    top = analyse("permit a { }\n\n", len("permit a { }\n\n"))
    assert top.block is BlockKind.TOP


def _compile(tmp_path: Path, body: str) -> tuple[Path, Project]:
    path = tmp_path / "p.charter"
    path.write_text(PREAMBLE + "\n" + body)
    return path, Project(tmp_path)


def _apply(text: str, fix: Fix) -> str:
    for e in sorted(fix.edits, key=lambda e: e.start, reverse=True):
        text = text[: e.start] + e.text + text[e.end :]
    return text


@pytest.mark.parametrize(
    ("body", "code", "title"),
    [
        ('forbid f { action call kb.write  approvers treasuri\n reason "x" }\n', "E106", None),
        (
            'require approval a {\n  action call kb.write\n  approvers treasuri\n  reason "x"\n}\n',
            "E201",
            "Change to 'treasury'",
        ),
        ("permit p {\n  actor role research\n  action call kb.read\n}\n", "W506", "Add a reason"),
        (
            'forbid f {\n  action call kb.write\n  when args.x == "y"\n  on error ignore\n  reason "x"\n}\n',
            "W507",
            "Remove 'on error ignore' (fail closed)",
        ),
        ("# charter: ignore W505\ntool spare {}\n", "W509", "Add a reason to the suppression"),
    ],
    ids=["no-fix", "did-you-mean", "reason", "fail-open", "suppression"],
)
def test_fixes_remove_the_finding(tmp_path: Path, body: str, code: str, title: str | None) -> None:
    path, _ = _compile(tmp_path, body)
    text = path.read_text()
    diag = next(d for d in _diagnostics(tmp_path, path) if d.code.value == code)
    module = parse_text(text, str(path)).module
    found = {f.title: f for f in fixes(diag, text, module)}
    if title is None:
        assert all(f.startswith("Suppress") for f in found) or not found
        return
    path.write_text(_apply(text, found[title]))
    after = [d.code.value for d in _diagnostics(tmp_path, path)]
    assert code not in after, after


def _diagnostics(root: Path, path: Path) -> list[Diagnostic]:
    """What the editor shows: the compiler's diagnostics after lint levels and suppressions."""
    return Project(root).compile(path).diagnostics


def test_unused_role_is_removed_from_its_list(tmp_path: Path) -> None:
    path = tmp_path / "p.charter"
    path.write_text("policy p\nroles used, spare, other\nagent a { role used }\nagent b { role other }\n")
    result = check([path])
    diag = next(d for d in result.diagnostics if d.code.value == "W508")
    text = path.read_text()
    fix = next(
        f for f in fixes(diag, text, parse_text(text, str(path)).module) if f.title.startswith("Remove")
    )
    assert _apply(text, fix).splitlines()[1] == "roles used, other"


def test_every_warning_can_be_suppressed_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "p.charter"
    path.write_text("policy p\n\ntool spare {}\n")
    text = path.read_text()
    diag = next(d for d in _diagnostics(tmp_path, path) if d.code.value == "W505")
    fix = next(f for f in fixes(diag, text, None) if f.title.startswith("Suppress"))
    path.write_text(_apply(text, fix))
    assert "W505" not in [d.code.value for d in _diagnostics(tmp_path, path)]


def test_index_finds_declarations_and_references_across_files() -> None:
    done = Project(ROOT).compile(ROOT / "policies" / "gates.charter")
    ix = done.index
    assert ix.declarations((SymbolKind.ESCALATION, "risk-chain"))[0].span.path.endswith("org.charter")
    refs = {o.span.path.rsplit("/", 1)[-1] for o in ix.references((SymbolKind.ESCALATION, "risk-chain"))}
    assert refs == {"runaway.charter", "provenance.charter"}
    args = ix.references((SymbolKind.TOOL_ARG, "payments.transfer/amount"))
    assert args and all(o.span.path.endswith(".charter") for o in args)
    assert ix.names(SymbolKind.UNIT) == ["USD", "tokens"]


def test_a_new_declaration_kind_plugs_in_with_one_extractor() -> None:
    """What named conditions will do: register an extractor for their node and make bare names in
    conditions references (here with the Group node standing in for the new declaration)."""
    text = 'policy p\ngroup big_payment { members a }\nforbid f {\n  when big_payment\n  reason "x"\n}\n'
    module = parse_text(text, "p.charter").module
    assert module is not None

    def declares(node: ast.Group, walk: Walk) -> Iterator[Occurrence]:
        yield Occurrence(SymbolKind.ROLE, node.name.value, node.name.span, True, node)

    extractor(ast.Group)(declares)
    CEL_NAME_KINDS.add(SymbolKind.ROLE)
    try:
        ix = SymbolIndex.build([module], {"p.charter": text})
    finally:
        _EXTRACTORS[ast.Group].remove(declares)
        CEL_NAME_KINDS.discard(SymbolKind.ROLE)
    (ref,) = ix.references((SymbolKind.ROLE, "big_payment"))
    assert (ref.span.line, ref.span.column, ref.span.end_column) == (4, 8, 19)
    assert ix.at("p.charter", 4, 10) == ref


def test_tokens_never_span_lines_and_classify_names() -> None:
    done = Project(ROOT).compile(ROOT / "policies" / "gates.charter")
    shown = "policies/gates.charter"
    text = (ROOT / shown).read_text()
    module = next(m for m in done.result.modules if m.path == shown)
    toks = tokens(text, module, done.index, shown)
    lines = LineIndex(text)
    for t in toks:
        assert t.column - 1 + t.length <= len(lines.line_text(t.line))
    by_pos = {(t.line, t.column): t.type for t in toks}
    line = text[: text.index("approvers treasury")].count("\n") + 1
    assert by_pos[(line, 3)] is TokenType.KEYWORD and by_pos[(line, 13)] is TokenType.CLASS


def test_mask_paths_reference_the_argument_of_every_tool_declaring_it() -> None:
    from charter.syntax import parse_text

    text = (
        "policy p\n"
        "tool a.send { arg password: string }\n"
        "tool b.send { arg password: string  arg card: map of string }\n"
        "mask args.password, args.card.number\n"
    )
    module = parse_text(text, "p.charter").module
    assert module is not None
    ix = SymbolIndex.build([module], {"p.charter": text})
    refs = {
        o.key: o
        for k in ("a.send/password", "b.send/password")
        for o in ix.references((SymbolKind.TOOL_ARG, k))
    }
    assert set(refs) == {(SymbolKind.TOOL_ARG, "a.send/password"), (SymbolKind.TOOL_ARG, "b.send/password")}
    ref = refs[(SymbolKind.TOOL_ARG, "a.send/password")]
    assert (ref.span.line, ref.span.column, ref.span.end_column) == (4, 11, 19)
    (card,) = ix.references((SymbolKind.TOOL_ARG, "b.send/card"))
    assert text[card.span.start : card.span.end] == "card"
