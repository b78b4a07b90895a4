"""uvicorn's httptools protocol with one write per response, and POST /v1/decide answered in the protocol."""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescingTransport:
    """Wraps a transport: a header block is held until the next write, then both go out as one.

    uvicorn writes a response as two ``transport.write`` calls (status line and headers, then the
    body): two send() system calls and, on a keep-alive connection, two TCP segments the client
    must wait for. Holding the header block and joining it with the body makes that one of each.
    A held block never waits past the current event-loop iteration (``call_soon`` flush), so a
    response without a body write (HEAD, an app that never sends the body) still goes out, in
    order; ``close`` flushes first. Every other attribute is the wrapped transport's.
    """

    __slots__ = ("_held", "_loop", "_t")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._t = transport
        self._held: bytes | None = None
        self._loop = loop

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._t.write(held + bytes(data))
        elif data[:5] == b"HTTP/" and data[-4:] == b"\r\n\r\n" and not self._t.is_closing():
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._t.write(data)

    def flush(self) -> None:
        """Send a held header block now (no-op when nothing is held)."""
        held = self._held
        if held is not None:
            self._held = None
            if not self._t.is_closing():
                self._t.write(held)

    def close(self) -> None:
        self.flush()
        self._t.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)


def _httptools_protocol() -> Any:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # uvicorn without the [standard] extras (no httptools)
        return None
    return HttpToolsProtocol


_BASE: Any = _httptools_protocol()
_DECIDE_URL = b"/v1/decide"


def _fast_app(app: Any) -> Any:
    """The SidecarApp under uvicorn's wrappers (proxy headers, message logger), if it is one."""
    for _ in range(8):
        if hasattr(app, "decide_now"):
            return app
        app = getattr(app, "app", None)
    return None


if _BASE is not None:
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE

    class CoalescingHttpToolsProtocol(_BASE):
        """HttpToolsProtocol over a :class:`CoalescingTransport`, and the decide fast path.

        A POST /v1/decide on an idle keep-alive HTTP/1.1 connection, with a Content-Length within
        the body limit, no Expect, no upgrade, to a sidecar whose store never blocks (memory), is
        answered from ``on_message_complete``: the body is collected by the parser callbacks and
        the sidecar's own decide endpoint runs to completion (``SidecarApp.decide_now``); the
        status line, uvicorn's default headers (date) and the endpoint's headers and body go out
        in one write. No ASGI cycle, no task. Every other request takes uvicorn's path unchanged.
        (Module level: uvicorn's workers pickle the class.)
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            fast = _fast_app(self.app)
            usable = fast is not None and fast.inline and self.limit_concurrency is None
            self._fast = fast if usable and not self.access_log else None
            self._max_body: int = getattr(fast, "max_body", 0) if fast is not None else 0
            self._chunks: list[bytes] | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(CoalescingTransport(transport, self.loop))

        def _fast_ok(self) -> bool:
            if self._fast is None or self.url != _DECIDE_URL or self.expect_100_continue or self.root_path:
                return False
            parser = self.parser
            if parser.get_method() != b"POST" or parser.get_http_version() != "1.1":
                return False
            if not parser.should_keep_alive() or parser.should_upgrade() or self.pipeline:
                return False
            if (self.cycle is not None and not self.cycle.response_complete) or self.flow.write_paused:
                return False
            length = None
            for name, value in self.headers:
                if name == b"content-length":
                    if length is not None:
                        return False
                    length = value
                elif name == b"transfer-encoding":
                    return False
            return length is not None and length.isdigit() and int(length) <= self._max_body

        def on_headers_complete(self) -> None:
            if self._fast_ok():
                self._chunks = []
                return
            self._chunks = None
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if self._chunks is not None:
                self._chunks.append(body)
                return
            super().on_body(body)

        def on_message_complete(self) -> None:
            chunks = self._chunks
            if chunks is None:
                super().on_message_complete()
                return
            self._chunks = None
            fast = self._fast
            assert fast is not None  # INVARIANT: chunks are collected only when _fast_ok()
            response = fast.decide_now(self.headers, b"".join(chunks))
            content = [STATUS_LINE[response.status_code]]
            for name, value in self.server_state.default_headers:
                content += [name, b": ", value, b"\r\n"]
            for name, value in response.raw_headers:
                content += [name, b": ", value, b"\r\n"]
            content += [b"\r\n", bytes(response.body)]
            if not self.transport.is_closing():  # the client may have gone (as uvicorn's send checks)
                self.transport.write(b"".join(content))
            self.on_response_complete()


def protocol_class() -> Any:
    """The HTTP protocol for uvicorn: httptools with coalesced writes, or "auto" without httptools."""
    return "auto" if _BASE is None else CoalescingHttpToolsProtocol
