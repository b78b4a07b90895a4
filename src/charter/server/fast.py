"""The lean path for POST /v1/decide: raw ASGI in front of Starlette, same handler, same answers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from charter.extras import missing_extra

try:
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response
    from starlette.types import Receive, Scope, Send
except ImportError as _exc:  # an optional dependency: name the extra to install
    raise missing_extra("server", "the sidecar (charter serve)", _exc) from _exc

log = logging.getLogger("charter.server")
#: The one route served without Starlette's middleware stack and router.
DECIDE_PATH = "/v1/decide"


class HttpLike(Protocol):
    """What the handlers read from a request: the subset shared by Starlette's Request and LiteRequest."""

    @property
    def headers(self) -> Any: ...

    @property
    def method(self) -> str: ...

    @property
    def url(self) -> Any: ...

    async def body(self) -> bytes: ...

    def stream(self) -> AsyncIterator[bytes]: ...


class _Headers:
    """Case-insensitive ``get`` over the raw ASGI header list (first value wins, as in Starlette)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]):
        self._raw = raw

    def get(self, key: str, default: str | None = None) -> str | None:
        want = key.lower().encode("latin-1")
        for k, v in self._raw:
            if k == want:
                return v.decode("latin-1")
        return default


class _Url:
    __slots__ = ("path",)

    def __init__(self, path: str):
        self.path = path


class LiteRequest:
    """The few request attributes the decide handler uses, read straight from the ASGI scope."""

    __slots__ = ("_body", "_consumed", "_receive", "headers", "method", "path")

    def __init__(self, scope: Scope, receive: Receive, body: bytes | None = None):
        self._receive = receive
        self._body = body
        self._consumed = body is not None
        self.headers = _Headers(scope["headers"])
        self.method: str = scope["method"]
        self.path: str = scope["path"]

    @property
    def url(self) -> _Url:
        return _Url(self.path)

    async def stream(self) -> AsyncIterator[bytes]:
        """The body chunks as they arrive; ClientDisconnect if the client goes away (as Starlette)."""
        if self._body is not None:
            yield self._body
            return
        if self._consumed:
            raise RuntimeError("Stream consumed")
        while not self._consumed:
            message = await self._receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                if not message.get("more_body", False):
                    self._consumed = True
                if chunk:
                    yield chunk
            elif message["type"] == "http.disconnect":
                raise ClientDisconnect()

    async def body(self) -> bytes:
        """The whole body (one message in the common case, no generator)."""
        if self._body is None:
            message = await self._receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                self._consumed = True
                self._body = message.get("body", b"")
            elif message["type"] == "http.disconnect":
                raise ClientDisconnect()
            else:
                chunks = [message.get("body", b"")]
                async for chunk in self.stream():
                    chunks.append(chunk)
                self._body = b"".join(chunks)
        return self._body


async def _no_receive() -> Any:
    raise RuntimeError("the body was given whole")


class SidecarApp(Starlette):
    """Starlette for every route, except POST /v1/decide, which skips the middleware and router.

    INVARIANT: the decide endpoint is the very function Starlette's route would call (auth, limits,
    time limit, error mapping), so both paths give byte-identical responses.
    """

    def __init__(
        self,
        decide: Callable[[Any], Awaitable[Response]],
        *,
        inline: bool,
        max_body: int,
        internal_error: Callable[[], Response],
        **kw: Any,
    ):
        super().__init__(**kw)
        self._decide = decide
        #: the store never blocks (memory): a decision can be answered without leaving the caller
        self.inline = inline
        #: the largest body answered in the protocol (proto.py); larger ones take the ASGI path
        self.max_body = max_body
        self._internal_error = internal_error

    def decide_now(self, headers: list[tuple[bytes, bytes]], body: bytes) -> Response:
        """The decide endpoint run to completion synchronously, for a body already read (inline only).

        With the memory store the endpoint never suspends (no I/O, no time limit task); should it
        ever, the coroutine is closed and the answer is the endpoint's 500 (fail closed), never a guess.
        """
        scope = {"headers": headers, "method": "POST", "path": DECIDE_PATH}
        coro = self._decide(LiteRequest(scope, _no_receive, body))
        try:
            coro.send(None)  # type: ignore[attr-defined]
        except StopIteration as done:
            response: Response = done.value
            return response
        coro.close()  # type: ignore[attr-defined]
        log.error("internal error on POST %s: the inline decide endpoint suspended", DECIDE_PATH)
        return self._internal_error()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == DECIDE_PATH
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            scope["app"] = self
            response = await self._decide(LiteRequest(scope, receive))
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
