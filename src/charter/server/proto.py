"""uvicorn's httptools protocol, with each response's header block and first body chunk in one write."""

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

if _BASE is not None:

    class CoalescingHttpToolsProtocol(_BASE):
        """HttpToolsProtocol over a :class:`CoalescingTransport` (module level: workers pickle it)."""

        def connection_made(self, transport: Any) -> None:
            super().connection_made(CoalescingTransport(transport, self.loop))


def protocol_class() -> Any:
    """The HTTP protocol for uvicorn: httptools with coalesced writes, or "auto" without httptools."""
    return "auto" if _BASE is None else CoalescingHttpToolsProtocol
