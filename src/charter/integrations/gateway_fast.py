"""The gateway's raw JSON-RPC fast path: `tools/call` decided in-process and forwarded as JSON.

The mcp SDK costs about 0.3-0.5 ms of CPU per hop (pydantic models of every message, session
layers, anyio streams, a task per request). On the hot path - a ``tools/call`` of a 2026-07-28
("modern") client - the gateway does not need them: it checks the request itself (the same
checks, with the SDK's own envelope classifier), decides it through the same
:meth:`Gateway.handle` as the SDK path, and sends the upstream server a JSON-RPC request over
the same connection the SDK's client session uses (its stdio pipe, or its HTTP client), whose
JSON answer goes back to the agent without being re-validated. Everything else - the handshake
era, ``initialize``, ``server/discover``, ``tools/list``, approvals answered by elicitation, any
message the fast path does not recognise exactly - is handed to the SDK unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import mcp_types as types
from mcp.client.stdio import get_default_environment
from mcp.shared.inbound import InboundLadderRejection, classify_inbound_request
from mcp.shared.message import SessionMessage
from mcp_types import (
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
)
from mcp_types import methods as _methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from charter.errors import Error

if TYPE_CHECKING:
    import httpx2 as httpx  # the mcp SDK's HTTP client

__all__ = ["FastCall", "RawHttp", "RawStdio", "UpstreamError", "parse_call", "wire_result"]

#: the longest JSON-RPC line read from an upstream server over stdio (longer: the session ends)
MAX_LINE = 4 * 1024 * 1024
#: the longest request id the fast path takes (a longer one goes to the SDK)
MAX_ID = 256
#: the longest tool name looked up (the spec's names are at most 128 characters)
MAX_NAME = 256
#: the keys a fast-path tools/call may have (any other: the SDK path)
_TOP_KEYS = frozenset({"jsonrpc", "id", "method", "params"})
_PARAM_KEYS = frozenset({"name", "arguments", "_meta"})
#: the prefix of the ids of the gateway's own raw requests to an upstream server (the SDK's are ints)
RAW_ID = "charter-"


class UpstreamError(Error):
    """The upstream server answered a raw request with a JSON-RPC error (passed on as it is)."""

    def __init__(self, error: Any):
        super().__init__(str(error)[:200])
        self.error = error if isinstance(error, dict) else {"code": -32603, "message": "Internal error"}


class UpstreamUnavailable(Error):
    """The raw channel cannot carry this call (not ready, closed): the SDK client carries it."""


# ---- the agent's request -------------------------------------------------------------------------


class FastCall:
    """A ``tools/call`` the fast path takes: its id, tool name, arguments and envelope."""

    __slots__ = ("arguments", "capabilities", "id", "name", "version")

    def __init__(self, id: str | int, name: str, arguments: dict[str, Any], version: str, capabilities: Any):
        self.id = id
        self.name = name
        self.arguments = arguments
        self.version = version
        self.capabilities = capabilities

    @property
    def elicitation(self) -> bool:
        """Whether the client declared the elicitation capability (in this request's envelope)."""
        return isinstance(self.capabilities, Mapping) and self.capabilities.get("elicitation") is not None


def _valid_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**53) < value < 2**53
    return isinstance(value, str) and 0 < len(value) <= MAX_ID


def parse_call(msg: Any, headers: Mapping[str, str] | None = None) -> FastCall | None:
    """The fast-path reading of a decoded JSON-RPC message, or None: the SDK takes it.

    Only an exactly well-formed 2026-07-28 ``tools/call`` request qualifies: the JSON-RPC
    envelope, an id that is a string or a safe integer, ``name`` a string, ``arguments`` an
    object or absent, no other parameter (``inputResponses``/``requestState``: an approval being
    answered) and a per-request envelope the SDK's own classifier accepts (with the HTTP headers
    when given). Anything else - notifications, batches, responses, other methods, the handshake
    era - is the SDK's, which answers it as it always does.
    """
    if not isinstance(msg, dict) or msg.get("method") != "tools/call" or msg.get("jsonrpc") != "2.0":
        return None
    if not msg.keys() <= _TOP_KEYS or not _valid_id(msg.get("id")):
        return None
    params = msg.get("params")
    if not isinstance(params, dict) or not params.keys() <= _PARAM_KEYS:
        return None
    name = params.get("name")
    arguments = params.get("arguments")
    if not isinstance(name, str) or len(name) > MAX_NAME:
        return None
    if arguments is None:
        arguments = {}
    elif not isinstance(arguments, dict):
        return None
    meta = params.get("_meta")
    if not isinstance(meta, dict) or meta.get(PROTOCOL_VERSION_META_KEY) not in MODERN_PROTOCOL_VERSIONS:
        return None
    route = classify_inbound_request(msg, headers=headers)
    if isinstance(route, InboundLadderRejection):
        return None
    return FastCall(msg["id"], name, arguments, route.protocol_version, route.client_capabilities)


def wire_result(result: Any, version: str, server_info: Callable[[], Any], *, raw_version: str | None) -> Any:
    """A tools/call result as the SDK's server would put it on the wire for ``version``.

    A model (charter's own answers: refusals, input_required) goes through the SDK's per-version
    serializer, as on the SDK path. A raw upstream result is passed on as it is when the
    upstream spoke the agent's protocol version (the agent's client validates it); otherwise it
    too is shaped for the agent's version. Then ``resultType`` and the ``serverInfo`` stamp are
    filled when absent (the SDK's rules: a handler-authored stamp wins).
    """
    if isinstance(result, dict) and raw_version == version:
        out = result
    else:
        if not isinstance(result, dict):
            result = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        out = _methods.serialize_server_result("tools/call", version, result)
    if version in MODERN_PROTOCOL_VERSIONS:
        if out.get("resultType") is None:
            out["resultType"] = "complete"
        meta = out.get("_meta")
        if meta is None:
            out["_meta"] = {SERVER_INFO_META_KEY: server_info()}
        elif isinstance(meta, dict) and meta.get(SERVER_INFO_META_KEY) is None:
            out["_meta"] = {**meta, SERVER_INFO_META_KEY: server_info()}
    return out


# ---- the upstream side ---------------------------------------------------------------------------


class _Channel:
    """What the raw requests of one upstream share: the era the SDK client opened, its envelope."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        #: the 2026-07-28 envelope the SDK client sends this server (None: not seen yet)
        self.envelope: dict[str, Any] | None = None
        self.version: str | None = None
        self.closed = False

    @property
    def ready(self) -> bool:
        # only a 2026-07-28 session: a handshake-era one (the SDK client sent `initialize`) keeps
        # every call on the SDK session, whose connection state the raw channel does not track
        return not self.closed and self.envelope is not None

    def watch(self, msg: Any) -> None:
        """Learn the era from a message the SDK client sends (the first ones only)."""
        if self.ready or not isinstance(msg, (types.JSONRPCRequest, types.JSONRPCNotification)):
            return
        if msg.method == "initialize":
            return
        meta = (msg.params or {}).get("_meta") if isinstance(msg.params, dict) else None
        if isinstance(meta, dict) and meta.get(PROTOCOL_VERSION_META_KEY) in MODERN_PROTOCOL_VERSIONS:
            self.version = meta[PROTOCOL_VERSION_META_KEY]
            self.envelope = {
                k: v
                for k, v in meta.items()
                if k.startswith("io.modelcontextprotocol/") and k != "io.modelcontextprotocol/related-task"
            }

    def request(self, name: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if not self.ready:
            raise UpstreamUnavailable
        rid = f"{RAW_ID}{next(self._ids)}"
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        if self.envelope is not None:
            params["_meta"] = self.envelope
        return rid, {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}

    def settle(self, msg: dict[str, Any]) -> bool:
        """Resolve a raw request's future with its response; False if ``msg`` is not one."""
        rid = msg.get("id")
        if not isinstance(rid, str) or not rid.startswith(RAW_ID) or "method" in msg:
            return False
        fut = self.pending.pop(rid, None)
        if fut is not None and not fut.done():
            fut.set_result(msg)
        return True

    def fail_all(self) -> None:
        # a request already sent may have run: it fails (never re-sent through the SDK session)
        self.closed = True
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(UpstreamError({"code": -32603, "message": "the upstream server went away"}))
        self.pending.clear()


def _answer(msg: dict[str, Any]) -> dict[str, Any]:
    if "error" in msg:
        raise UpstreamError(msg["error"])
    result = msg.get("result")
    if not isinstance(result, dict):
        raise UpstreamError({"code": -32603, "message": "the upstream server sent no result object"})
    return result


class RawStdio:
    """An upstream server over stdio, shared by the SDK's client session and raw requests.

    The transport the SDK ``Client`` is given (an async context manager yielding its streams):
    it spawns the server like the SDK's ``stdio_client`` (same environment rules), writes the
    session's messages as JSON lines and reads the server's lines, answering raw requests
    (ids ``charter-N``) directly and handing every other line to the session, parsed as the
    SDK's transport parses it.
    """

    def __init__(self, command: tuple[str, ...], env: Mapping[str, str], cwd: str | None):
        self.command = command
        self.env = dict(env)
        self.cwd = cwd
        self.channel = _Channel()
        self._stdin: asyncio.StreamWriter | None = None

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[tuple[Any, Any]]:
        proc = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=sys.stderr,
            env=get_default_environment() | self.env,
            cwd=self.cwd,
            limit=MAX_LINE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        self._stdin = proc.stdin
        to_session, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](64)
        write_stream, from_session = anyio.create_memory_object_stream[SessionMessage](64)
        channel = self.channel

        async def reader() -> None:
            assert proc.stdout is not None
            async with to_session:
                while True:
                    try:
                        line = await proc.stdout.readuntil(b"\n")
                    except asyncio.IncompleteReadError:
                        break
                    except asyncio.LimitOverrunError:
                        break  # an upstream line beyond MAX_LINE: the session ends (fail closed)
                    try:
                        msg = json.loads(line)
                    except ValueError as exc:
                        await to_session.send(exc)
                        continue
                    if isinstance(msg, dict) and channel.settle(msg):
                        continue
                    try:
                        parsed = types.jsonrpc_message_adapter.validate_python(msg, by_name=False)
                    except ValueError as exc:
                        await to_session.send(exc)
                        continue
                    await to_session.send(SessionMessage(parsed))
            channel.fail_all()

        async def writer() -> None:
            assert proc.stdin is not None
            async with from_session:
                async for sm in from_session:
                    channel.watch(sm.message)
                    data = sm.message.model_dump_json(by_alias=True, exclude_unset=True)
                    proc.stdin.write(data.encode() + b"\n")
                    await proc.stdin.drain()

        tasks = [asyncio.ensure_future(reader()), asyncio.ensure_future(writer())]
        try:
            yield read_stream, write_stream
        finally:
            channel.fail_all()
            for t in tasks:
                t.cancel()
            with contextlib.suppress(Exception):
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 2.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 2.0)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t

    async def call(self, name: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Send a raw tools/call; its result object, and the protocol version it was asked in."""
        channel = self.channel
        rid, req = channel.request(name, arguments)
        if self._stdin is None or self._stdin.is_closing():
            raise UpstreamUnavailable
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        channel.pending[rid] = fut
        try:
            self._stdin.write(json.dumps(req, separators=(",", ":")).encode() + b"\n")
            await self._stdin.drain()
            return _answer(await fut), channel.version
        finally:
            channel.pending.pop(rid, None)


#: the largest upstream HTTP response head / body the raw channel reads (beyond: the call fails)
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
#: idle keep-alive connections kept per upstream
MAX_IDLE = 8


def _breaks(text: str) -> bool:
    return "\n" in text or "\r" in text


class _Http11:
    """A minimal HTTP/1.1 keep-alive client for the raw channel's POSTs to a plain ``http://``
    upstream (httpx costs about 0.3 ms of CPU per request; this, a few tens of µs). It speaks
    only what the exchange needs: one POST, a response with Content-Length or chunked body,
    bounded head and body; anything else fails the call and drops the connection."""

    def __init__(self, url: str, headers: Mapping[str, str]):
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = parts.netloc.rpartition("@")[2]
        fixed = {"host": authority, **{k.lower(): v for k, v in headers.items()}}
        self._head = "".join(
            f"{k}: {v}\r\n" for k, v in fixed.items() if "\n" not in k + v and "\r" not in k + v
        )
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, str, bytes]:
        """POST ``body``; the status, content type and body of the response."""
        head = f"POST {self.path} HTTP/1.1\r\n{self._head}" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items() if not _breaks(k + v)
        )
        data = f"{head}content-length: {len(body)}\r\n\r\n".encode("latin-1") + body
        for attempt in (0, 1):
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await asyncio.open_connection(self.host, self.port)
            try:
                conn[1].write(data)
                status, ctype, payload, keep = await self._response(conn[0])
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                conn[1].close()
                if reused and attempt == 0:
                    continue  # a kept connection the server had closed: once more on a new one
                raise
            if keep and len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
            else:
                conn[1].close()
            return status, ctype, payload
        raise OSError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _response(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            raise ValueError("response head too large")
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        status = int(rest[:3])
        fields: dict[str, str] = {}
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if sep:
                fields[k.strip().lower()] = v.strip()
        keep = version == "HTTP/1.1" and fields.get("connection", "").lower() != "close"
        if "chunked" in fields.get("transfer-encoding", "").lower():
            chunks = bytearray()
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers are sent to this client
                    break
                if len(chunks) + size > MAX_BODY:
                    raise ValueError("response body too large")
                chunks += await reader.readexactly(size)
                await reader.readexactly(2)
            payload = bytes(chunks)
        else:
            length = fields.get("content-length")
            if length is None or not length.isdigit():
                raise ValueError("a response without a length")  # would need reading to EOF
            if int(length) > MAX_BODY:
                raise ValueError("response body too large")
            payload = await reader.readexactly(int(length))
        return status, fields.get("content-type", ""), payload, keep

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


class RawHttp:
    """An upstream server over Streamable HTTP: raw requests are POSTed with the same HTTP client
    (connection pool, configured headers) the SDK's transport uses; the era and envelope are
    learnt from the session's own requests."""

    def __init__(self, url: str, client: httpx.AsyncClient, headers: Mapping[str, str] | None = None):
        self.url = url
        self.client = client
        #: plain http:// goes over charter's small HTTP/1.1 client; https:// over the SDK's httpx
        self._plain = _Http11(url, headers or {}) if url.startswith("http://") else None
        self.channel = _Channel()
        hooks = dict(client.event_hooks)
        hooks["request"] = [*hooks.get("request", []), self._watch_request]
        client.event_hooks = hooks

    async def _watch_request(self, request: httpx.Request) -> None:
        if self.channel.ready or request.method != "POST":
            return
        try:
            msg = types.jsonrpc_message_adapter.validate_json(request.content, by_name=False)
        except ValueError:
            return
        self.channel.watch(msg)

    async def call(self, name: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """POST a raw tools/call; its result object, and the protocol version it was asked in."""
        channel = self.channel
        rid, req = channel.request(name, arguments)
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
            "mcp-protocol-version": channel.version or "",
            "mcp-method": "tools/call",
            "mcp-name": name,
        }
        body = json.dumps(req, separators=(",", ":")).encode()
        try:
            if self._plain is not None:
                status, ctype, payload = await self._plain.post(body, headers)
            else:
                resp = await self.client.post(self.url, content=body, headers=headers)
                status, ctype, payload = resp.status_code, resp.headers.get("content-type", ""), resp.content
        except Exception as exc:  # a transport failure: the call failed (settled as failure)
            why = f"upstream unreachable ({type(exc).__name__})"
            raise UpstreamError({"code": -32603, "message": why}) from exc
        if ctype.startswith("application/json"):
            try:
                msg = json.loads(payload)
            except (ValueError, RecursionError):
                msg = None
            if isinstance(msg, dict) and msg.get("id") == rid:
                return _answer(msg), channel.version
        elif ctype.startswith("text/event-stream"):
            for line in payload.decode("utf-8", "replace").splitlines():
                if not line.startswith("data:"):
                    continue
                with contextlib.suppress(ValueError, RecursionError):
                    msg = json.loads(line[5:])
                    if isinstance(msg, dict) and msg.get("id") == rid and "method" not in msg:
                        return _answer(msg), channel.version
        why = f"the upstream server answered HTTP {status} without a result"
        raise UpstreamError({"code": -32603, "message": why})

    def close(self) -> None:
        """Close the raw channel's kept connections."""
        self.channel.fail_all()
        if self._plain is not None:
            self._plain.close()
