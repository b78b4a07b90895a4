"""A real `charter lsp` process driven by pygls's own LanguageClient over stdio (no editor)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

T = TypeVar("T")


class Session:
    """One server process: open, edit, wait for diagnostics, send requests."""

    def __init__(self, root: Path, options: dict[str, Any] | None = None) -> None:
        self.root = root
        self.options = options or {}
        self.client = LanguageClient("charter-tests", "1")
        self.diagnostics: dict[str, lsp.PublishDiagnosticsParams] = {}
        self.arrivals: list[tuple[float, lsp.PublishDiagnosticsParams]] = []
        self.versions: dict[str, int] = {}
        self._event = asyncio.Event()

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _diagnostics(_client: LanguageClient, params: lsp.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = params
            self.arrivals.append((time.perf_counter(), params))
            self._event.set()

        @self.client.feature(lsp.WINDOW_LOG_MESSAGE)
        def _log(_client: LanguageClient, params: lsp.LogMessageParams) -> None:
            pass

    async def start(self) -> lsp.InitializeResult:
        await self.client.start_io(sys.executable, "-m", "charter", "lsp", cwd=str(self.root))
        result = await self.client.initialize_async(
            lsp.InitializeParams(
                capabilities=lsp.ClientCapabilities(),
                root_uri=self.uri(self.root),
                initialization_options=self.options,
            )
        )
        self.client.initialized(lsp.InitializedParams())
        return result

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), 10)
            self.client.exit(None)
        finally:
            await asyncio.wait_for(self.client.stop(), 10)

    @staticmethod
    def uri(path: Path) -> str:
        out = from_fs_path(str(path.resolve()))
        assert out is not None
        return out

    def open(self, path: Path, text: str | None = None) -> str:
        uri = self.uri(path)
        self.versions[uri] = 1
        self.client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(
                    uri=uri, language_id="charter", version=1, text=path.read_text() if text is None else text
                )
            )
        )
        return uri

    def replace(self, uri: str, text: str) -> int:
        """Send the whole new text (a full-document change); returns the new version."""
        self.versions[uri] += 1
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        return self.versions[uri]

    def edit(self, uri: str, rng: lsp.Range, text: str) -> int:
        """An incremental change of one range."""
        self.versions[uri] += 1
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[lsp.TextDocumentContentChangePartial(range=rng, text=text)],
            )
        )
        return self.versions[uri]

    async def wait_for(
        self, uri: str, version: int | None = None, timeout: float = 30.0
    ) -> lsp.PublishDiagnosticsParams:
        """The diagnostics of a document, once they are for ``version`` (or any, when None)."""
        deadline = time.perf_counter() + timeout
        while True:
            got = self.diagnostics.get(uri)
            if got is not None and (version is None or got.version == version):
                return got
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"no diagnostics for {uri} version {version}; have {got}")
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), left)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait until diagnostics received so far satisfy ``predicate``."""
        deadline = time.perf_counter() + timeout
        while not predicate():
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"diagnostics never matched; have {self.diagnostics}")
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), left)

    async def request(self, method: str, params: Any, timeout: float = 30.0) -> Any:
        return await asyncio.wait_for(self.client.protocol.send_request_async(method, params), timeout)


def run(root: Path, scenario: Callable[[Session], Awaitable[T]], options: dict[str, Any] | None = None) -> T:
    """Start a server in ``root``, run the scenario, always shut the server down."""

    async def main() -> T:
        session = Session(root, options)
        await session.start()
        try:
            return await scenario(session)
        finally:
            await session.stop()

    return asyncio.run(main())


def pos(text: str, needle: str, delta: int = 0) -> lsp.Position:
    """The LSP position (UTF-16) of ``needle``'s first occurrence plus ``delta`` characters."""
    at = text.index(needle) + delta
    line = text.count("\n", 0, at)
    col_text = text[text.rfind("\n", 0, at) + 1 : at]
    return lsp.Position(line=line, character=len(col_text.encode("utf-16-le")) // 2)
