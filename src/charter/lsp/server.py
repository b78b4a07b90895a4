"""`charter lsp`: the language server (pygls) over charter.editing; a thin shell of LSP types.

Diagnostics come from the real compiler: after an edit the document's whole policy is compiled
again (debounced, on one worker thread, open buffers overlaying the files) and every file of the
policy gets its diagnostics. Requests read the latest compile; those that need positions to match
the text (hover, definition, references, code actions, tokens) wait for a compile of the current
text first. Completion answers at once from the last compile (names) and the current text.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from pathlib import Path
from typing import Any

from charter.extras import missing_extra

try:
    from lsprotocol import types as lsp
    from pygls.exceptions import JsonRpcException
    from pygls.lsp.server import LanguageServer
    from pygls.protocol import LanguageServerProtocol
    from pygls.uris import from_fs_path, to_fs_path
except ImportError as _exc:  # an optional dependency: name the extra to install
    raise missing_extra("lsp", "the language server (charter lsp)", _exc) from _exc

from charter import __version__
from charter.editing.complete import ItemKind, complete
from charter.editing.fixes import fixes
from charter.editing.hover import hover
from charter.editing.project import Project, ProjectCompile, absolute
from charter.editing.symbols import SymbolKind
from charter.editing.text import LineIndex
from charter.editing.tokens import TOKEN_MODIFIERS, TOKEN_TYPES, Token, encode, tokens
from charter.lsp.convert import Units, to_diagnostic, to_offset, to_range
from charter.syntax.parser import MAX_FILE_BYTES
from charter.syntax.printer import format_source

log = logging.getLogger("charter.lsp")

#: Wait this long after the last edit before compiling (typing bursts compile once).
DEBOUNCE_S = 0.05
#: Longest a request waits for the compile of the current text before using the last one.
FRESH_WAIT_S = 5.0

_ITEM_KIND = {
    ItemKind.KEYWORD: lsp.CompletionItemKind.Keyword,
    ItemKind.SNIPPET: lsp.CompletionItemKind.Snippet,
    ItemKind.SYMBOL: lsp.CompletionItemKind.Reference,
    ItemKind.FIELD: lsp.CompletionItemKind.Field,
    ItemKind.FUNCTION: lsp.CompletionItemKind.Function,
    ItemKind.METHOD: lsp.CompletionItemKind.Method,
    ItemKind.VALUE: lsp.CompletionItemKind.EnumMember,
}
_SYMBOL_ITEM = {
    SymbolKind.TOOL: lsp.CompletionItemKind.Function,
    SymbolKind.GROUP: lsp.CompletionItemKind.Class,
    SymbolKind.ESCALATION: lsp.CompletionItemKind.Interface,
    SymbolKind.ROLE: lsp.CompletionItemKind.TypeParameter,
    SymbolKind.AGENT: lsp.CompletionItemKind.Variable,
    SymbolKind.UNIT: lsp.CompletionItemKind.Unit,
    SymbolKind.SIGNAL: lsp.CompletionItemKind.Event,
}
_OUTLINE = {
    SymbolKind.RULE: lsp.SymbolKind.Function,
    SymbolKind.TOOL: lsp.SymbolKind.Method,
    SymbolKind.GROUP: lsp.SymbolKind.Class,
    SymbolKind.ESCALATION: lsp.SymbolKind.Interface,
    SymbolKind.SIGNAL: lsp.SymbolKind.Event,
    SymbolKind.AGENT: lsp.SymbolKind.Variable,
    SymbolKind.POLICY: lsp.SymbolKind.Namespace,
    SymbolKind.CONSTANT: lsp.SymbolKind.Constant,
    SymbolKind.CONDITION: lsp.SymbolKind.Function,
    SymbolKind.GRANT: lsp.SymbolKind.Struct,
}


class CharterProtocol(LanguageServerProtocol):
    """pygls's protocol, answering a request whose params do not deserialize with an error.

    pygls logs such a message and drops it, so the client would wait for an answer forever.
    """

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Deserialize one message; a request that does not deserialize gets an error response."""
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "id" in data and "method" in data:
                error = lsp.ResponseError(code=exc.code, message=f"{exc.message}: {data.get('method')}")
                self._send_response(data["id"], error=error)
            raise


class CharterServer(LanguageServer):
    """The charter language server: a Project, a compile worker and the LSP features."""

    def __init__(self) -> None:
        super().__init__(
            "charter",
            __version__,
            text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
            protocol_cls=CharterProtocol,
        )
        self.project = Project()
        self.debounce_s = DEBOUNCE_S
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="charter-compile")
        self._timers: dict[tuple[Path, ...], asyncio.TimerHandle] = {}
        self._running: dict[tuple[Path, ...], asyncio.Future[ProjectCompile]] = {}
        self._published: dict[tuple[Path, ...], set[Path]] = {}

    # ---- documents and paths ----------------------------------------------------------------
    def units(self) -> Units:
        """Code units of a string in the negotiated position encoding."""
        codec = self.workspace.position_codec
        return codec.client_num_units

    @staticmethod
    def path_of(uri: str) -> Path | None:
        """The file a URI names (None for other schemes)."""
        if not uri.startswith("file:"):
            return None
        fs = to_fs_path(uri)
        return Path(fs).resolve() if fs else None

    def text_of(self, uri: str) -> str:
        """The document's current text ('' when unknown)."""
        doc = self.workspace.text_documents.get(uri)
        if doc is not None:
            return doc.source
        path = self.path_of(uri)
        return (self.project.text(path) or "") if path is not None else ""

    def lines_of(self, path: Path) -> LineIndex:
        """Line index of a file's current text (open buffer or disk)."""
        return LineIndex(self.project.text(path) or "")

    # ---- compiling and diagnostics ----------------------------------------------------------
    def schedule(self, path: Path) -> None:
        """Compile the document's policy after the debounce delay (restarted by each edit)."""
        target = self.project.target(path)
        old = self._timers.pop(target, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[target] = loop.call_later(self.debounce_s, lambda: self._start(path, target))

    def _start(self, path: Path, target: tuple[Path, ...]) -> asyncio.Future[ProjectCompile]:
        self._timers.pop(target, None)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._worker, self.project.compile, path)
        self._running[target] = future
        future.add_done_callback(lambda f: self._publish(target, f))
        return future

    def _publish(self, target: tuple[Path, ...], future: asyncio.Future[ProjectCompile]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            log.error("compile failed: %r", exc)
            return
        done = future.result()
        units = self.units()
        files = done.by_file()
        for path in self._published.get(target, set()) - set(files):
            files[path] = []
        for path, diags in files.items():
            lines = self.lines_of(path)
            real = path.resolve()
            self.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(
                    uri=from_fs_path(str(real)) or str(real),
                    diagnostics=[to_diagnostic(d, lines, units) for d in diags],
                    version=done.versions.get(real),
                )
            )
        self._published[target] = {p for p, d in files.items() if d}

    async def fresh(self, path: Path) -> ProjectCompile:
        """A compile of the current texts: the last one if nothing changed since, else a new one."""
        target = self.project.target(path)
        last = self.project.last(path)
        if last is not None and last.versions == self.project.versions:
            return last
        timer = self._timers.pop(target, None)
        if timer is not None:
            timer.cancel()
        running = self._running.get(target)
        if running is None or running.done() or timer is not None:
            running = self._start(path, target)
        try:
            return await asyncio.wait_for(asyncio.shield(running), FRESH_WAIT_S)
        except TimeoutError:
            return last if last is not None else await running


server = CharterServer()


# ---- document sync ------------------------------------------------------------------------------
@server.feature(lsp.INITIALIZE)
def initialize(ls: CharterServer, params: lsp.InitializeParams) -> None:
    """Workspace root, configured policy roots (initializationOptions.roots) and debounce."""
    root = None
    if params.root_uri:
        root = ls.path_of(params.root_uri)
    elif params.workspace_folders:
        root = ls.path_of(params.workspace_folders[0].uri)
    options = params.initialization_options if isinstance(params.initialization_options, dict) else {}
    raw = options.get("roots")
    base = root or Path.cwd()
    names = [r for r in raw if isinstance(r, str) and r] if isinstance(raw, list) else []
    # a root is a directory of the workspace; '/' or a path outside would sweep unrelated files
    roots = [(base / r).resolve() for r in names]
    ls.project = Project(root, [r for r in roots if r.is_dir() and (root is None or r.is_relative_to(root))])
    debounce = options.get("debounceMs")
    if isinstance(debounce, (int, float)) and not isinstance(debounce, bool) and 0 <= debounce <= 10_000:
        ls.debounce_s = debounce / 1000


def _synced(ls: CharterServer, uri: str, version: int | None) -> None:
    path = ls.path_of(uri)
    if path is None:
        return
    ls.project.set_text(path, ls.text_of(uri), version)
    ls.schedule(path)


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: CharterServer, params: lsp.DidOpenTextDocumentParams) -> None:
    """An opened document overlays its file; its policy is compiled."""
    _synced(ls, params.text_document.uri, params.text_document.version)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: CharterServer, params: lsp.DidChangeTextDocumentParams) -> None:
    """An edit: the policy is compiled again once the typing pauses."""
    _synced(ls, params.text_document.uri, params.text_document.version)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: CharterServer, params: lsp.DidSaveTextDocumentParams) -> None:
    """A save changes nothing the overlay did not have, but other files may have changed on disk."""
    doc = ls.workspace.text_documents.get(params.text_document.uri)
    _synced(ls, params.text_document.uri, doc.version if doc else None)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: CharterServer, params: lsp.DidCloseTextDocumentParams) -> None:
    """A closed document: the file on disk counts again."""
    path = ls.path_of(params.text_document.uri)
    if path is not None:
        ls.project.close(path)
        ls.schedule(path)


# ---- requests ------------------------------------------------------------------------------------
def _doc(ls: CharterServer, uri: str) -> tuple[Path, str, LineIndex] | None:
    """Path, text and lines of a document the server can answer about (None: not a policy file)."""
    path = ls.path_of(uri)
    if path is None:
        return None
    text = ls.text_of(uri)
    if len(text) > MAX_FILE_BYTES:
        return None
    return path, text, LineIndex(text)


def _shown(done: ProjectCompile, path: Path) -> str:
    """The name the compile gave a file (spans and the symbol index use it)."""
    for shown in done.result.sources:
        if absolute(shown) == path:
            return shown
    return str(path)


def _module(done: ProjectCompile, shown: str) -> Any:
    """The parsed file named ``shown`` in a compile (None when it did not parse)."""
    return next((m for m in done.result.modules if m.path == shown), None)


def _location(ls: CharterServer, span_path: str, span: Any) -> lsp.Location:
    path = absolute(span_path)
    return lsp.Location(
        uri=from_fs_path(str(path)) or str(path), range=to_range(ls.lines_of(path), span, ls.units())
    )


@server.feature(
    lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[".", " "], resolve_provider=False)
)
def completion(ls: CharterServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    """Completions from the current text and the last compile (never waits for a compile)."""
    found = _doc(ls, params.text_document.uri)
    if found is None:
        return lsp.CompletionList(is_incomplete=False, items=[])
    path, text, lines = found
    units = ls.units()
    offset = to_offset(lines, params.position, units)
    done = ls.project.last(path)
    result = complete(text, offset, done.index if done else None, done.symbols if done else None)
    rng = lsp.Range(
        start=to_range(lines, lines.span("", result.start, result.start), units).start,
        end=params.position,
    )
    items = [
        lsp.CompletionItem(
            label=i.label,
            kind=_SYMBOL_ITEM.get(i.symbol, _ITEM_KIND[i.kind]) if i.symbol else _ITEM_KIND[i.kind],
            detail=i.detail or None,
            text_edit=lsp.TextEdit(range=rng, new_text=i.insert or i.label),
            insert_text_format=lsp.InsertTextFormat.Snippet if i.snippet else lsp.InsertTextFormat.PlainText,
        )
        for i in result.items
    ]
    return lsp.CompletionList(is_incomplete=False, items=items)


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
async def on_hover(ls: CharterServer, params: lsp.HoverParams) -> lsp.Hover | None:
    """A name's declaration, a rule's effect and reason, a condition's type."""
    found = _doc(ls, params.text_document.uri)
    if found is None:
        return None
    path, text, lines = found
    done = await ls.fresh(path)
    h = hover(done, _shown(done, path), text, to_offset(lines, params.position, ls.units()))
    if h is None:
        return None
    content = lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=h.markdown)
    rng = (
        to_range(lines, h.span, ls.units()) if h.span is not None and absolute(h.span.path) == path else None
    )
    return lsp.Hover(contents=content, range=rng)


async def _occurrence(
    ls: CharterServer, uri: str, position: lsp.Position
) -> tuple[ProjectCompile, Any] | None:
    found = _doc(ls, uri)
    if found is None:
        return None
    path, _text, lines = found
    done = await ls.fresh(path)
    line, col = lines.position(to_offset(lines, position, ls.units()))
    occ = done.index.at(_shown(done, path), line, col)
    return (done, occ) if occ is not None else None


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
async def definition(ls: CharterServer, params: lsp.DefinitionParams) -> list[lsp.Location]:
    """Where a name is declared; for an include, the included file."""
    found = await _occurrence(ls, params.text_document.uri, params.position)
    if found is None:
        return []
    done, occ = found
    if occ.kind is SymbolKind.FILE:
        target = absolute(occ.name)
        start = lsp.Position(line=0, character=0)
        return [
            lsp.Location(
                uri=from_fs_path(str(target)) or str(target), range=lsp.Range(start=start, end=start)
            )
        ]
    return [_location(ls, d.span.path, d.span) for d in done.index.declarations(occ.key)]


@server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
async def references(ls: CharterServer, params: lsp.ReferenceParams) -> list[lsp.Location]:
    """Every use of the name under the cursor, across the policy's files."""
    found = await _occurrence(ls, params.text_document.uri, params.position)
    if found is None:
        return []
    done, occ = found
    refs = done.index.references(occ.key, params.context.include_declaration)
    return [_location(ls, r.span.path, r.span) for r in refs]


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
async def document_symbols(
    ls: CharterServer, params: lsp.DocumentSymbolParams
) -> list[lsp.SymbolInformation]:
    """The file's outline: rules and declarations."""
    found = _doc(ls, params.text_document.uri)
    if found is None:
        return []
    path, _text, _lines = found
    done = await ls.fresh(path)
    out = []
    for occ in done.index.in_file(_shown(done, path)):
        if occ.declaration and occ.kind in _OUTLINE:
            out.append(
                lsp.SymbolInformation(
                    name=occ.name, kind=_OUTLINE[occ.kind], location=_location(ls, occ.span.path, occ.span)
                )
            )
    return out


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: CharterServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
    """The whole document in the one canonical style (the code of `charter fmt`)."""
    text = ls.text_of(params.text_document.uri)
    if len(text) > MAX_FILE_BYTES:
        return []
    out, _diags = format_source(text, params.text_document.uri)
    if out is None or out == text:
        return []
    lines = LineIndex(text)
    whole = lines.span("", 0, len(text))
    return [lsp.TextEdit(range=to_range(lines, whole, ls.units()), new_text=out)]


@server.feature(
    lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix])
)
async def code_actions(ls: CharterServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    """Quick fixes for the diagnostics in the range (see charter.editing.fixes)."""
    found = _doc(ls, params.text_document.uri)
    if found is None:
        return []
    path, text, lines = found
    done = await ls.fresh(path)
    units = ls.units()
    first = to_offset(lines, params.range.start, units)
    last = to_offset(lines, params.range.end, units)
    shown = _shown(done, path)
    module = _module(done, shown)
    actions = []
    for diag in done.diagnostics:
        if absolute(diag.span.path) != path:
            continue
        start = lines.offset(diag.span.line, diag.span.column)
        end = lines.offset(diag.span.end_line, diag.span.end_column)
        if end < first or start > last:
            continue
        ours = to_diagnostic(diag, lines, units)
        for fix in fixes(diag, text, module):
            edits = [
                lsp.TextEdit(range=to_range(lines, lines.span("", e.start, e.end), units), new_text=e.text)
                for e in fix.edits
            ]
            actions.append(
                lsp.CodeAction(
                    title=fix.title,
                    kind=lsp.CodeActionKind.QuickFix,
                    diagnostics=[ours],
                    is_preferred=fix.preferred,
                    edit=lsp.WorkspaceEdit(changes={params.text_document.uri: edits}),
                )
            )
    return actions


@server.feature(
    lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
    lsp.SemanticTokensLegend(
        token_types=[t.value for t in TOKEN_TYPES], token_modifiers=[m.value for m in TOKEN_MODIFIERS]
    ),
)
async def semantic_tokens(ls: CharterServer, params: lsp.SemanticTokensParams) -> lsp.SemanticTokens:
    """Names coloured by what they are, keywords, literals and condition parts."""
    found = _doc(ls, params.text_document.uri)
    if found is None:
        return lsp.SemanticTokens(data=[])
    path, text, lines = found
    done = await ls.fresh(path)
    shown = _shown(done, path)
    module = _module(done, shown)
    units = ls.units()
    converted = []
    for t in tokens(text, module, done.index, shown):
        line_text = lines.line_text(t.line)
        col = units(line_text[: t.column - 1]) + 1
        length = units(line_text[t.column - 1 : t.column - 1 + t.length])
        converted.append(Token(t.line, col, length, t.type, t.modifiers))
    return lsp.SemanticTokens(data=encode(converted))


def main(debounce_ms: float | None = None) -> None:
    """Serve over stdio until the client says exit."""
    if debounce_ms is not None:
        server.debounce_s = debounce_ms / 1000
    server.start_io()
