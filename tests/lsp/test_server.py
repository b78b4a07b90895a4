"""`charter lsp` over stdio, driven by pygls's own client: diagnostics as you type, hover, go to
definition, references, completion, formatting, quick fixes and semantic tokens on a copy of
policies/ (every request goes to a real server process)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from tests.lsp.session import Session, pos, run

from charter.editing.tokens import TOKEN_TYPES, TokenType
from charter.syntax.printer import format_source

ROOT = Path(__file__).parents[2]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    return tmp_path


def test_diagnostics_follow_edits_with_code_help_and_version(work: Path) -> None:
    gates = work / "policies" / "gates.charter"
    text = gates.read_text()

    async def scenario(s: Session) -> None:
        uri = s.open(gates)
        first = await s.wait_for(uri, 1)
        assert list(first.diagnostics) == []
        # every file of the policy gets its diagnostics: one notification per file, sent in
        # the order the compile lists them, so the other files' may come after this one's
        await s.wait_until(lambda: any(u.endswith("/org.charter") for u in s.diagnostics), timeout=10)
        broken = text.replace("approvers treasury", "approvers treasurie", 1)
        v = s.replace(uri, broken)
        got = await s.wait_for(uri, v)
        assert [d.code for d in got.diagnostics] == ["E201"]
        d = got.diagnostics[0]
        assert d.message.startswith("unknown group 'treasurie'")
        assert "help: did you mean 'treasury'?" in d.message
        assert d.range == lsp.Range(start=pos(broken, "treasurie"), end=pos(broken, "treasurie", 9))
        assert d.severity == lsp.DiagnosticSeverity.Error and d.source == "charter"
        v = s.replace(uri, text)
        assert list((await s.wait_for(uri, v)).diagnostics) == []

    run(work, scenario)


def test_unsaved_buffer_overlays_disk_for_the_other_files(work: Path) -> None:
    """An edit in one open buffer (never saved) changes the diagnostics of another file."""
    org = work / "policies" / "org.charter"
    gates = work / "policies" / "gates.charter"

    async def scenario(s: Session) -> None:
        org_uri = s.open(org)
        gates_uri = s.open(gates)
        await s.wait_for(gates_uri, 1)
        v = s.replace(org_uri, org.read_text().replace("escalation risk-chain", "escalation risk-chain2"))
        await s.wait_for(org_uri, v)
        runaway_uri = Session.uri(work / "policies" / "runaway.charter")
        has = s.diagnostics
        await s.wait_until(lambda: runaway_uri in has and bool(has[runaway_uri].diagnostics))
        runaway = s.diagnostics[runaway_uri]
        assert [d.code for d in runaway.diagnostics] == ["E201", "E201"]
        assert "did you mean 'risk-chain2'?" in runaway.diagnostics[0].message
        assert "risk-chain2" not in org.read_text(), "the server never writes files"

    run(work, scenario)


def test_hover_definition_references(work: Path) -> None:
    gates = work / "policies" / "gates.charter"
    text = gates.read_text()

    async def scenario(s: Session) -> None:
        uri = s.open(gates)
        await s.wait_for(uri, 1)
        doc = lsp.TextDocumentIdentifier(uri=uri)
        tool = await s.request(
            "textDocument/hover",
            lsp.HoverParams(text_document=doc, position=pos(text, "payments.transfer", 3)),
        )
        assert "| `amount` | double |" in tool.contents.value
        assert "category `payment`" in tool.contents.value
        arg = await s.request(
            "textDocument/hover", lsp.HoverParams(text_document=doc, position=pos(text, "args.amount", 8))
        )
        assert arg.contents.value.startswith("`args.amount`: **double**")
        rule = await s.request(
            "textDocument/hover", lsp.HoverParams(text_document=doc, position=pos(text, "big-payments", 2))
        )
        assert "effect **require_approval**" in rule.contents.value
        assert "Payments above 10,000 USD need 2 approvals" in rule.contents.value

        where = await s.request(
            "textDocument/definition",
            lsp.DefinitionParams(text_document=doc, position=pos(text, "approvers treasury", 12)),
        )
        assert [loc.uri.rsplit("/", 1)[-1] for loc in where] == ["agents.yaml"]
        inventory = (work / "policies" / "agents.yaml").read_text()
        assert where[0].range.start == pos(inventory, "  treasury:", 2)

        tool_def = await s.request(
            "textDocument/definition",
            lsp.DefinitionParams(text_document=doc, position=pos(text, "payments.transfer", 1)),
        )
        assert [loc.uri.rsplit("/", 1)[-1] for loc in tool_def] == ["tools.charter"]

        refs = await s.request(
            "textDocument/references",
            lsp.ReferenceParams(
                text_document=doc,
                position=pos(text, "payments.transfer", 1),
                context=lsp.ReferenceContext(include_declaration=True),
            ),
        )
        files = sorted({loc.uri.rsplit("/", 1)[-1] for loc in refs})
        assert {"gates.charter", "tools.charter", "permissions.charter"} <= set(files)

    run(work, scenario)


def test_completion_in_context(work: Path) -> None:
    gates = work / "policies" / "gates.charter"
    text = gates.read_text()

    async def scenario(s: Session) -> None:
        uri = s.open(gates)
        await s.wait_for(uri, 1)
        doc = lsp.TextDocumentIdentifier(uri=uri)

        async def labels(position: lsp.Position) -> list[str]:
            got = await s.request(
                "textDocument/completion", lsp.CompletionParams(text_document=doc, position=position)
            )
            return [i.label for i in got.items]

        assert "treasury" in await labels(pos(text, "approvers treasury", 10))
        assert {"amount", "payee", "memo"} <= set(await labels(pos(text, "args.amount", 5)))
        in_rule = await labels(pos(text, "  approvers treasury"))
        assert {"approvers", "quorum", "expires after", "on timeout"} <= set(in_rule)
        assert "limit" not in in_rule, "a require approval rule has no limit clause"
        tools = await labels(pos(text, "action call payments.transfer", 12))
        assert {"payments.transfer", "kb.read", "tagged"} <= set(tools)

    run(work, scenario)


def test_formatting_is_charter_fmt(work: Path) -> None:
    gates = work / "policies" / "gates.charter"
    messy = gates.read_text().replace("\n  action call", "\n        action   call")

    async def scenario(s: Session) -> None:
        uri = s.open(gates, messy)
        edits = await s.request(
            "textDocument/formatting",
            lsp.DocumentFormattingParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                options=lsp.FormattingOptions(tab_size=2, insert_spaces=True),
            ),
        )
        assert len(edits) == 1
        expected, _ = format_source(messy, str(gates))
        assert edits[0].new_text == expected
        assert edits[0].range.start == lsp.Position(line=0, character=0)

    run(work, scenario)


def test_quick_fix_adds_a_missing_reason(work: Path) -> None:
    path = work / "policies" / "extra.charter"
    text = "policy extra\n\npermit kb-reads {\n  actor role research\n  action call kb.read\n}\n"
    path.write_text(text)

    async def scenario(s: Session) -> None:
        uri = s.open(path)
        got = await s.wait_for(uri, 1)
        assert "W506" in [d.code for d in got.diagnostics]
        d = next(d for d in got.diagnostics if d.code == "W506")
        actions = await s.request(
            "textDocument/codeAction",
            lsp.CodeActionParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                range=d.range,
                context=lsp.CodeActionContext(diagnostics=[d]),
            ),
        )
        titles = [a.title for a in actions]
        assert "Add a reason" in titles and "Suppress W506 here (with a reason)" in titles
        fix = next(a for a in actions if a.title == "Add a reason")
        assert fix.is_preferred
        (edit,) = fix.edit.changes[uri]
        assert edit.new_text == '  reason "TODO: say why, in plain language"\n'
        fixed = text.replace("  action call kb.read\n", "  action call kb.read\n" + edit.new_text)
        v = s.replace(uri, fixed)
        assert "W506" not in [d.code for d in (await s.wait_for(uri, v)).diagnostics]

    run(work, scenario)


def test_semantic_tokens_colour_names_by_what_they_are(work: Path) -> None:
    gates = work / "policies" / "gates.charter"
    text = gates.read_text()

    async def scenario(s: Session) -> None:
        uri = s.open(gates)
        got = await s.request(
            "textDocument/semanticTokens/full",
            lsp.SemanticTokensParams(text_document=lsp.TextDocumentIdentifier(uri=uri)),
        )
        data = got.data
        assert data and len(data) % 5 == 0
        line = col = 0
        found: dict[tuple[int, int], tuple[int, TokenType]] = {}
        for i in range(0, len(data), 5):
            dl, dc, length, kind, _mods = data[i : i + 5]
            line += dl
            col = col + dc if dl == 0 else dc
            found[(line, col)] = (length, TOKEN_TYPES[kind])
        p = pos(text, "treasury")
        assert found[(p.line, p.character)] == (8, TokenType.CLASS)
        p = pos(text, "payments.transfer")
        assert found[(p.line, p.character)] == (len("payments.transfer"), TokenType.FUNCTION)
        p = pos(text, "require approval")
        assert found[(p.line, p.character)] == (7, TokenType.KEYWORD)
        p = pos(text, "args.amount")
        assert found[(p.line, p.character)] == (4, TokenType.VARIABLE)
        p = pos(text, '"Payments above')
        assert found[(p.line, p.character)][1] is TokenType.STRING

    run(work, scenario)
