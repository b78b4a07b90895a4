"""Attacks on the language server's input paths (a real `charter lsp` process, pygls's client):
huge documents, invalid positions, files outside the workspace, rapid edits, unknown methods,
malformed requests. Invariants: the server answers (an error response at worst), stays alive,
never writes a file, and diagnostics stay those of the real compiler for the last text."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from tests.lsp.session import Session, pos, run

ROOT = Path(__file__).parents[2]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "policies", tmp_path / "ws" / "policies")
    return tmp_path / "ws"


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def _alive(s: Session, uri: str) -> None:
    """The server still answers a request about a normal document."""
    got = await s.request(
        "textDocument/hover",
        lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=0, character=0)
        ),
        timeout=30,
    )
    assert got is None or isinstance(got, lsp.Hover)


def test_huge_document_gets_a_size_diagnostic_and_requests_stay_fast(work: Path) -> None:
    """A 5 MB buffer: E003 (the file limit), no hang in completion, hover or tokens."""
    path = work / "policies" / "huge.charter"
    text = "policy huge\n" + ("# " + "x" * 98 + "\n") * 50_000

    async def scenario(s: Session) -> None:
        uri = s.open(path, text)
        got = await s.wait_for(uri, 1, timeout=60)
        assert [d.code for d in got.diagnostics] == ["E003"]
        doc = lsp.TextDocumentIdentifier(uri=uri)
        end = lsp.Position(line=50_000, character=10)
        loop = asyncio.get_running_loop()
        start = loop.time()
        items = await s.request(
            "textDocument/completion", lsp.CompletionParams(text_document=doc, position=end)
        )
        assert list(items.items) == []
        assert await s.request("textDocument/hover", lsp.HoverParams(text_document=doc, position=end)) is None
        toks = await s.request(
            "textDocument/semanticTokens/full", lsp.SemanticTokensParams(text_document=doc)
        )
        assert list(toks.data) == []
        assert loop.time() - start < 10
        assert not path.exists(), "the server never writes the buffer"

    run(work, scenario)


def test_deeply_nested_and_binary_looking_buffers_are_diagnosed(work: Path) -> None:
    path = work / "policies" / "deep.charter"
    deep = "policy deep\nforbid x {\n  when " + "(" * 5000 + "true" + ")" * 5000 + '\n  reason "r"\n}\n'

    async def scenario(s: Session) -> None:
        uri = s.open(path, deep)
        got = await s.wait_for(uri, 1, timeout=60)
        assert [d.code for d in got.diagnostics] == ["E004"]
        v = s.replace(uri, "policy p\n\x00\x01\x02 permit")
        got = await s.wait_for(uri, v, timeout=60)
        assert got.diagnostics and all(d.severity == lsp.DiagnosticSeverity.Error for d in got.diagnostics)

    run(work, scenario)


@pytest.mark.parametrize(
    "position",
    [
        lsp.Position(line=10**9, character=0),
        lsp.Position(line=0, character=10**9),
        lsp.Position(line=3, character=2**31 - 1),
        lsp.Position(line=1, character=3),  # inside the emoji's surrogate pair
    ],
    ids=["line-past-end", "char-past-end", "huge-char", "mid-surrogate"],
)
def test_invalid_utf16_positions_are_clamped(work: Path, position: lsp.Position) -> None:
    path = work / "policies" / "emoji.charter"
    text = 'policy emoji\n# 😋😋 comment\npermit r { action call kb.read  reason "😋" }\n'

    async def scenario(s: Session) -> None:
        uri = s.open(path, text)
        await s.wait_for(uri, 1)
        doc = lsp.TextDocumentIdentifier(uri=uri)
        for method, params in [
            ("textDocument/hover", lsp.HoverParams(text_document=doc, position=position)),
            ("textDocument/completion", lsp.CompletionParams(text_document=doc, position=position)),
            ("textDocument/definition", lsp.DefinitionParams(text_document=doc, position=position)),
            (
                "textDocument/references",
                lsp.ReferenceParams(
                    text_document=doc,
                    position=position,
                    context=lsp.ReferenceContext(include_declaration=True),
                ),
            ),
        ]:
            got = await s.request(method, params)
            assert got is None or isinstance(got, (lsp.Hover, lsp.CompletionList, list, tuple)), (method, got)
        await _alive(s, uri)

    run(work, scenario)


def test_incremental_edit_with_out_of_range_positions_keeps_the_server_alive(work: Path) -> None:
    gates = work / "policies" / "gates.charter"

    async def scenario(s: Session) -> None:
        uri = s.open(gates)
        await s.wait_for(uri, 1)
        bad = lsp.Range(
            start=lsp.Position(line=10**6, character=10**6), end=lsp.Position(line=10**6 + 1, character=0)
        )
        s.edit(uri, bad, "# appended\n")
        backwards = lsp.Range(start=lsp.Position(line=5, character=3), end=lsp.Position(line=2, character=0))
        v = s.edit(uri, backwards, "")
        got = await s.wait_for(uri, v, timeout=60)
        assert all(d.source == "charter" for d in got.diagnostics)
        await _alive(s, uri)

    run(work, scenario)


def test_files_outside_the_workspace_are_compiled_alone_and_never_written(work: Path, tmp_path: Path) -> None:
    """A document outside the root compiles alone (its directory is not swept for policies); an
    include reaching outside the root is a diagnostic, not a read of that file into the policy."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "neighbour.charter").write_text("policy neighbour\nthis is not a policy\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    lone = outside / "lone.charter"
    lone.write_text("policy lone\n")
    before = _snapshot(tmp_path)

    async def scenario(s: Session) -> None:
        uri = s.open(lone, 'policy lone\npermit r { action call kb.read  reason "r" }\n')
        got = await s.wait_for(uri, 1)
        assert [d.code for d in got.diagnostics] == ["E201"], "compiled alone: kb.read is unknown there"
        neighbour = Session.uri(outside / "neighbour.charter")
        assert neighbour not in s.diagnostics, "the neighbour was not swept into the policy"
        inc = work / "policies" / "inc.charter"
        v = 1
        uri2 = s.open(inc, 'policy inc\ninclude "../../secret.txt"\n')
        got = await s.wait_for(uri2, v, timeout=60)
        assert all(d.source == "charter" for d in got.diagnostics)
        assert Session.uri(secret) not in s.diagnostics or all(
            "root:x" not in d.message for d in s.diagnostics[Session.uri(secret)].diagnostics
        )
        await _alive(s, uri)

    run(work, scenario)
    assert _snapshot(tmp_path) == before, "nothing on disk changed"


def test_rapid_edits_end_with_the_diagnostics_of_the_last_text(work: Path) -> None:
    gates = work / "policies" / "gates.charter"
    text = gates.read_text()

    async def scenario(s: Session) -> None:
        uri = s.open(gates)
        await s.wait_for(uri, 1)
        v = 1
        for i in range(300):
            v = s.replace(uri, text.replace("approvers treasury", f"approvers treasury{i % 7}", 1))
        v = s.replace(uri, text.replace("quorum 2", "quorum 0", 1))
        got = await s.wait_for(uri, v, timeout=60)
        assert [d.code for d in got.diagnostics] == ["E403"]
        compiles = {p.version for _, p in s.arrivals if p.uri == uri}
        assert len(compiles) < 100, "edits in a burst are compiled far fewer times than sent"
        got = await s.request(
            "textDocument/hover",
            lsp.HoverParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos(text, "treasury", 2)
            ),
        )
        assert "members: alice, bob, carol" in got.contents.value

    run(work, scenario)


def test_unknown_methods_and_malformed_params_get_errors_not_a_dead_server(work: Path) -> None:
    gates = work / "policies" / "gates.charter"

    async def scenario(s: Session) -> None:
        uri = s.open(gates)
        await s.wait_for(uri, 1)
        with pytest.raises(JsonRpcException):
            await s.request("charter/noSuchMethod", {"x": 1})
        s.client.protocol.notify("charter/noSuchNotification", {"y": [1, 2]})
        nowhere = "file:///definitely/not/here.charter"
        got = await s.request(
            "textDocument/hover",
            lsp.HoverParams(
                text_document=lsp.TextDocumentIdentifier(uri=nowhere),
                position=lsp.Position(line=0, character=0),
            ),
        )
        assert got is None
        odd = "untitled:Untitled-1"
        s.client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(
                    uri=odd, language_id="charter", version=1, text="policy x\n"
                )
            )
        )
        edits = await s.request(
            "textDocument/formatting",
            lsp.DocumentFormattingParams(
                text_document=lsp.TextDocumentIdentifier(uri=odd),
                options=lsp.FormattingOptions(tab_size=2, insert_spaces=True),
            ),
        )
        assert not edits
        await _alive(s, uri)

    run(work, scenario)


def _raw(root: Path, bodies: list[bytes]) -> list[dict[str, object]]:
    """Send raw framed bodies to a fresh server; every JSON message it wrote back."""
    proc = subprocess.run(
        [sys.executable, "-m", "charter", "lsp"],
        input=b"".join(b"Content-Length: %d\r\n\r\n" % len(b) + b for b in bodies),
        capture_output=True,
        cwd=root,
        timeout=60,
    )
    out = []
    data = proc.stdout
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
        out.append(json.loads(rest[:length]))
        data = rest[length:]
    return out


def test_malformed_requests_get_error_responses(work: Path) -> None:
    """Requests whose params do not deserialize are answered with -32602 (pygls alone drops them,
    leaving the client waiting); garbage bodies and a wrong protocol version are skipped."""
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
    bad = [
        {"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": {"position": {"line": -1}}},
        {"jsonrpc": "2.0", "id": 3, "method": "textDocument/completion", "params": "nonsense"},
        {"jsonrpc": "1.0", "id": 4, "method": "textDocument/hover", "params": {}},
        {"jsonrpc": "2.0", "id": 5, "method": "charter/nothing", "params": {}},
    ]
    shutdown = {"jsonrpc": "2.0", "id": 6, "method": "shutdown"}
    bodies = [
        json.dumps(init).encode(),
        b"{not json",
        b"\xff\xfe\x00",
        *(json.dumps(b).encode() for b in bad),
    ]
    bodies += [json.dumps(shutdown).encode(), json.dumps({"jsonrpc": "2.0", "method": "exit"}).encode()]
    replies = {m["id"]: m for m in _raw(work, bodies) if "id" in m}
    assert replies[2]["error"]["code"] == -32602  # type: ignore[index]
    assert replies[3]["error"]["code"] in (-32602, -32603)  # type: ignore[index]
    assert replies[5]["error"]["code"] == -32601  # type: ignore[index]
    assert "result" in replies[6], "the server still answered after the garbage"


def test_bad_initialization_options_are_ignored(work: Path) -> None:
    gates = work / "policies" / "gates.charter"

    async def scenario(s: Session) -> None:
        uri = s.open(gates)
        got = await s.wait_for(uri, 1)
        assert list(got.diagnostics) == []

    run(work, scenario, options={"roots": ["/", 7, None], "debounceMs": float("1e300")})
