"""`charter gateway`: one policy in front of several MCP servers, over stdio or Streamable HTTP.

Built on the ``mcp`` SDK (2.x): a low-level ``Server`` faces the agents, one persistent
``mcp.Client`` session per upstream server faces the tools. Each agent is identified by a
bearer token (the sidecar's tokens file format: the entry's name is the actor id);
``tools/list`` shows only the tools some rule of the policy could allow that actor; every
``tools/call`` is decided by the in-process engine before it reaches a server, and allowed
calls are settled with their result's labels so ``on result`` rules see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from charter.extras import missing_extra

try:
    import mcp_types as types
    from mcp import Client
    from mcp.server.lowlevel.server import Server
    from mcp.server.runner import modern_error_data
    from mcp_types import PROTOCOL_VERSION_META_KEY
    from mcp_types.version import MODERN_PROTOCOL_VERSIONS
except ImportError as _exc:
    raise missing_extra("mcp", "the MCP gateway (charter gateway)", _exc) from _exc

from charter.engine.decision import Decision
from charter.engine.engine import Engine
from charter.enums import ActionKind, Mode, Outcome, RuleKind
from charter.errors import Error
from charter.hits import decision_reasons
from charter.integrations.gateway_config import GatewayConfig, UpstreamConfig
from charter.integrations.gateway_fast import (
    FastCall,
    RawHttp,
    RawStdio,
    UpstreamError,
    UpstreamUnavailable,
    parse_call,
    wire_result,
)
from charter.jsonenc import lone_surrogate, strict_loads
from charter.server.auth import TokenSet

__all__ = ["Gateway", "GatewayError", "ToolFilter", "http_app"]

#: the ASGI scope key under which the HTTP front puts the authenticated actor id
ACTOR_KEY = "charter.actor"
#: upper bound of a tool name the gateway will look up (the spec's names are at most 128 chars)
MAX_NAME = 256


#: the key of the approval question in an ``input_required`` result
_APPROVAL_KEY = "charter-approval"
_APPROVAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"approved": {"type": "boolean", "title": "It is approved: run the call"}},
    "required": ["approved"],
}


def _approved(answer: Any) -> bool:
    """Whether an elicitation answer says "approved" (anything else: not approved)."""
    if answer is None or getattr(answer, "action", None) != "accept":
        return False
    content = getattr(answer, "content", None)
    return isinstance(content, Mapping) and content.get("approved") is True


class GatewayError(Error):
    """The gateway cannot start: an upstream server is unreachable, or tool names collide."""


# ---- what the policy could ever allow ---------------------------------------------------------


class ToolFilter:
    """Which tools the policy could ever allow an actor: some enforced ``permit`` covers the
    actor and the tool, and no unconditional enforced ``forbid``/``halt`` does.

    Conditions, budgets and humans may still refuse a visible tool at call time; a hidden tool
    can never be allowed, so hiding it changes no decision (the engine decides every call,
    hidden or not). Answers are memoised per (actor, target).
    """

    def __init__(self, engine: Engine, workflow: str | None = None):
        self.policy = engine.policy
        self.workflow = workflow
        self._memo: dict[tuple[str, str], bool] = {}

    def visible(self, actor: str, target: str) -> bool:
        """Whether some rule could allow ``actor`` to call ``target``."""
        key = (actor, target)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._compute(actor, target)
        return found

    def _compute(self, actor: str, target: str) -> bool:
        declared = self.policy.agents.get(actor)
        roles = declared.roles if declared is not None else frozenset()
        ancestors = tuple(declared.ancestors) if declared is not None else ()
        rules = self.policy.index["rules"].select(
            ActionKind.CALL, target, actor, roles, ancestors, self.workflow
        )
        permitted = False
        for r in rules:
            if r.mode is not Mode.ENFORCE:
                continue
            if r.kind is RuleKind.PERMIT:
                permitted = True
            elif (
                r.kind in (RuleKind.FORBID, RuleKind.HALT)
                and not r.conditions
                and not r.signals
                and not r.sequences
            ):
                return False
        return permitted


# ---- upstream servers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """Where an exposed tool goes: its server, its name there, and its charter target."""

    upstream: Upstream
    name: str
    target: str
    tool: types.Tool


class Upstream:
    """A persistent client session with one upstream MCP server, and the raw channel beside it
    (:mod:`charter.integrations.gateway_fast`) that carries fast-path calls over the same
    connection: the same process's pipes over stdio, the same HTTP client over HTTP."""

    def __init__(self, cfg: UpstreamConfig):
        self.cfg = cfg
        self.client: Client | None = None
        self.raw: RawStdio | RawHttp | None = None

    def _server(self) -> Any:
        cfg = self.cfg
        if cfg.command:
            stdio = RawStdio(cfg.command, cfg.env, cfg.cwd)
            self.raw = stdio
            return stdio()
        assert cfg.url is not None
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        http = create_mcp_http_client(headers=dict(cfg.headers) or None)
        self.raw = RawHttp(cfg.url, http, cfg.headers)
        return streamable_http_client(cfg.url, http_client=http)

    async def connect(self, stack: contextlib.AsyncExitStack) -> None:
        """Open the session (kept for the gateway's life)."""
        # no response cache: a tools/list of the gateway must see what the server has now
        self.client = await stack.enter_async_context(Client(self._server(), cache=None))
        if isinstance(self.raw, RawHttp):
            stack.callback(self.raw.close)

    async def tools(self) -> list[types.Tool]:
        """Every tool of the server (all pages)."""
        assert self.client is not None
        out: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(1000):  # bounded: a server that pages forever is cut off
            res = await (self.client.list_tools(cursor=cursor) if cursor else self.client.list_tools())
            out.extend(res.tools)
            cursor = res.next_cursor
            if not cursor:
                break
        return out

    async def call(self, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        """Call a tool on the server. The session's request is sent as is: the result's output
        schema is checked by the agent's client, against the listing the gateway passed on."""
        assert self.client is not None
        return await self.client.session.send_request(
            types.CallToolRequest(params=types.CallToolRequestParams(name=name, arguments=arguments)),
            types.CallToolResult,
        )

    async def call_raw(self, name: str, arguments: dict[str, Any]) -> tuple[Any, str | None]:
        """Call a tool over the raw channel: the result object as JSON (not validated), and the
        protocol version it was asked in; through the SDK session when the channel is not ready."""
        if self.raw is not None:
            try:
                return await self.raw.call(name, arguments)
            except UpstreamUnavailable:
                pass
        return await self.call(name, arguments), None


# ---- the gateway ---------------------------------------------------------------------------------


def _error(text: str, meta: Mapping[str, Any]) -> types.CallToolResult:
    """A tool error the model sees (isError), with charter's details under ``_meta.charter``."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        is_error=True,
        _meta={"charter": dict(meta)},
    )


class Gateway:
    """The gateway: routes, the filter, and the decide/forward/settle path of a tools/call.

    ``tokens`` identifies agents (HTTP: each request's bearer token; stdio: the one token the
    gateway was started with). Without tokens, ``agent`` is the actor of every call (stdio only:
    the local process that started the gateway is trusted to say who it is).
    """

    def __init__(
        self,
        engine: Engine,
        config: GatewayConfig,
        *,
        tokens: TokenSet | None = None,
        agent: str | None = None,
        fast: bool = True,
    ):
        self.engine = engine
        #: take well-formed 2026-07-28 tools/call requests on the raw JSON-RPC fast path
        self.fast = fast
        #: tools/call requests answered on the fast path (tests and metrics)
        self.fast_calls = 0
        self.config = config
        self.tokens = tokens or TokenSet()
        self.agent = agent
        self.filter = ToolFilter(engine, config.workflow)
        self.upstreams = [Upstream(s) for s in config.servers]
        self.routes: dict[str, Route] = {}
        self._listed: dict[str, list[types.Tool]] = {}
        self._context: dict[str, Any] = {
            k: v for k, v in (("workflow", config.workflow), ("run", config.run)) if v
        }
        from charter.state.memory import MemoryStore

        #: the engine's store does no I/O: decide and settle inline (no thread hop per call)
        self._inline = isinstance(engine.store, MemoryStore)
        self.server = self._make_server()

    # ---- identity -----------------------------------------------------------------------------
    def actor_for_token(self, token: str | None) -> str | None:
        """The actor id of a bearer token (None: missing, unknown, or not allowed to decide)."""
        if not token or len(token) > 4096:
            return None
        who = self.tokens.lookup(token)
        if who is None or not who.may("decide"):
            return None
        return who.name

    def _actor(self, ctx: Any) -> str | None:
        request = getattr(ctx, "request", None)
        if request is not None:  # HTTP: the front authenticated this request
            scope = getattr(request, "scope", None) or {}
            actor = scope.get(ACTOR_KEY)
            return actor if isinstance(actor, str) else None
        return self.agent

    # ---- starting ------------------------------------------------------------------------------
    async def start(self, stack: contextlib.AsyncExitStack) -> None:
        """Connect every upstream server and build the routes (names must not collide)."""
        for up in self.upstreams:
            try:
                await up.connect(stack)
            except Exception as exc:
                raise GatewayError(
                    f"server {up.cfg.name}: cannot connect ({type(exc).__name__}: {exc})"
                ) from None
        await self.refresh()

    async def refresh(self) -> None:
        """List every server's tools again and rebuild the routes."""
        routes: dict[str, Route] = {}
        sep = self.config.separator
        for up in self.upstreams:
            for tool in await up.tools():
                exposed = f"{up.cfg.name}{sep}{tool.name}" if self.config.namespaced else tool.name
                if exposed in routes:
                    raise GatewayError(
                        f"tool name {exposed!r} is offered by {routes[exposed].upstream.cfg.name} and "
                        f"{up.cfg.name}: set 'namespacing: always'"
                    )
                shown = tool.model_copy(update={"name": exposed})
                routes[exposed] = Route(up, tool.name, up.cfg.prefix + tool.name, shown)
        self.routes = routes
        self._listed.clear()

    # ---- tools/list ----------------------------------------------------------------------------
    def tools_for(self, actor: str) -> list[types.Tool]:
        """The tools ``actor`` is shown (those the policy could ever allow it)."""
        listed = self._listed.get(actor)
        if listed is None:
            listed = [r.tool for r in self.routes.values() if self.filter.visible(actor, r.target)]
            if len(self._listed) > 10_000:  # bounded under many distinct actors
                self._listed.clear()
            self._listed[actor] = listed
        return listed

    async def _on_list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        actor = self._actor(ctx)
        return types.ListToolsResult(tools=self.tools_for(actor) if actor else [])

    # ---- tools/call ----------------------------------------------------------------------------
    def _request(self, actor: str, route: Route, arguments: Any, approval: str | None) -> dict[str, Any]:
        req: dict[str, Any] = {
            "actor": {"id": actor},
            "action": {"kind": "call", "target": route.target, "args": arguments},
        }
        if self._context:
            req["context"] = self._context
        if approval:
            req["approval"] = approval
        return req

    async def _decide(self, req: dict[str, Any]) -> Decision | str:
        """The decision, or the text of why none could be made (the call is then refused)."""
        try:
            if self._inline:
                return self.engine.decide(req)
            return await asyncio.to_thread(self.engine.decide, req)
        except Error as exc:  # a malformed request: nothing decided, nothing forwarded
            return f"charter refused the request: {exc}"
        except Exception as exc:  # fail closed
            return f"charter could not decide this call ({type(exc).__name__}); denied"

    def _inbox_link(self, approval_id: str) -> str | None:
        base = self.config.inbox
        return f"{base.rstrip('/')}/approvals/{approval_id}" if base else None

    def _approval_message(self, d: Decision, exposed: str, aid: str, link: str | None) -> str:
        where = f" at {link}" if link else ""
        return (
            f"charter: the call to {exposed} needs human approval ({decision_reasons(d)}). "
            f"Approval {aid}{where}. Accept once it is approved to run the call."
        )

    async def _ask_legacy(self, ctx: Any, message: str) -> bool:
        """Ask the human at the client with an ``elicitation/create`` request (handshake-era
        connections with a back-channel). True if they say it is approved."""
        try:
            answer = await ctx.session.elicit_form(
                message, _APPROVAL_SCHEMA, related_request_id=ctx.request_id
            )
        except Exception:  # no back-channel (JSON-response or stateless HTTP), or the client failed
            return False
        return _approved(answer)

    async def call(
        self,
        ctx: Any,
        name: str,
        arguments: Any,
        input_responses: Mapping[str, Any] | None = None,
        request_state: str | None = None,
    ) -> types.CallToolResult | types.InputRequiredResult:
        """Decide one tools/call of the SDK path (the SDK's request context ``ctx``) and forward it
        if allowed: :meth:`handle` with what the SDK knows of the client."""
        caps = getattr(getattr(ctx, "session", None), "client_capabilities", None)

        async def ask(message: str) -> bool:
            return await self._ask_legacy(ctx, message)

        return await self.handle(
            self._actor(ctx),
            name,
            arguments,
            input_responses,
            request_state,
            elicitation=caps is not None and caps.elicitation is not None,
            modern=getattr(ctx, "protocol_version", None) in MODERN_PROTOCOL_VERSIONS,
            ask=ask,
        )

    async def handle(
        self,
        actor: str | None,
        name: Any,
        arguments: Any,
        input_responses: Mapping[str, Any] | None,
        request_state: str | None,
        *,
        elicitation: bool,
        modern: bool,
        ask: Callable[[str], Awaitable[bool]] | None,
        raw: bool = False,
    ) -> Any:
        """Decide one tools/call and forward it if allowed (the heart of the gateway; the SDK path
        and the fast path both come here, so a call is decided the same way on either).

        require_approval: a client that declares elicitation is asked (2026-07-28: an
        ``input_required`` result the client answers by retrying the call; earlier versions: an
        ``elicitation/create`` request through ``ask``); when the human says it is approved, the
        call is decided again with the approval id, and the engine checks that approval (its
        quorum, and that it was given for this very actor and action: a forged or replayed
        ``requestState`` cannot approve anything else). Otherwise the answer is a tool error with
        the inbox link. ``raw``: an allowed call goes over the upstream's raw channel and its
        result comes back as ``(JSON object, protocol version)`` instead of a model.
        """
        if actor is None:
            return _error(
                "charter: this client is not identified (no valid token); denied", {"outcome": "deny"}
            )
        route = self.routes.get(name) if isinstance(name, str) and len(name) <= MAX_NAME else None
        if route is None:
            return _error(f"charter: unknown tool {str(name)[:128]!r}", {"outcome": "deny"})
        if arguments is None:
            arguments = {}
        if lone_surrogate(arguments):  # json.loads keeps "\\ud800"; forwarded, it broke the upstream session
            return _error(
                "charter: an argument holds a lone surrogate (not Unicode text)", {"outcome": "deny"}
            )
        # the human answered our question (accept or not): never ask again for this call
        answered = isinstance(input_responses, Mapping) and _APPROVAL_KEY in input_responses
        retried = (
            answered
            and isinstance(request_state, str)
            and request_state.startswith("ap-")
            and len(request_state) <= 128
            and _approved(input_responses.get(_APPROVAL_KEY))  # type: ignore[union-attr]
        )
        d = await self._decide(self._request(actor, route, arguments, request_state if retried else None))
        if isinstance(d, str):
            return _error(d, {"outcome": "deny"})
        if d.outcome is Outcome.REQUIRE_APPROVAL and d.obligations.get("approval_id") and not answered:
            aid = str(d.obligations["approval_id"])
            link = self._inbox_link(aid)
            if elicitation:
                message = self._approval_message(d, name, aid, link)
                if modern:
                    return types.InputRequiredResult(
                        input_requests={
                            _APPROVAL_KEY: types.ElicitRequest(
                                params=types.ElicitRequestFormParams(
                                    message=message, requested_schema=_APPROVAL_SCHEMA
                                )
                            )
                        },
                        request_state=aid,
                    )
                if ask is not None and await ask(message):
                    d2 = await self._decide(self._request(actor, route, arguments, aid))
                    if isinstance(d2, str):
                        return _error(d2, {"outcome": "deny"})
                    d = d2
        if d.outcome is Outcome.REQUIRE_APPROVAL:
            aid = str(d.obligations.get("approval_id") or request_state or "")
            link = self._inbox_link(aid) if aid else None
            where = f" Approve it at {link}, then" if link else " Once it is approved,"
            meta: dict[str, Any] = {"outcome": d.outcome.value, "decision_id": d.id, "approval_id": aid}
            if link:
                meta["inbox"] = link
            return _error(
                f"charter: this call needs human approval ({decision_reasons(d)}). "
                f"Approval id: {aid}.{where} retry the same call.",
                meta,
            )
        if d.outcome is not Outcome.ALLOW:
            meta = {"outcome": d.outcome.value, "decision_id": d.id, "rules": [h.id for h in d.rules]}
            esc = d.obligations.get("escalation") or {}
            if esc.get("id"):
                meta["escalation_id"] = esc["id"]
            return _error(f"charter: {d.outcome.value}: {decision_reasons(d)}", meta)
        try:
            out: Any
            if raw:
                out = await route.upstream.call_raw(route.name, arguments)
                res = out[0]
                failed = res.get("isError") is True if isinstance(res, dict) else bool(res.is_error)
            else:
                out = await route.upstream.call(route.name, arguments)
                failed = bool(out.is_error)
        except BaseException:
            await self._settle(d, "failure", route)
            raise
        await self._settle(d, "failure" if failed else "success", route)
        return out

    async def _settle(self, d: Decision, outcome: str, route: Route) -> None:
        labels = route.upstream.cfg.labels
        try:
            if self._inline:
                self.engine.settle(d.id, outcome=outcome, labels=labels)
            else:
                await asyncio.to_thread(self.engine.settle, d.id, None, outcome, labels)
        except Exception:  # a settlement problem never turns into a tool error; it is traced
            return

    async def _on_call_tool(
        self, ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        return await self.call(
            ctx, params.name, params.arguments, params.input_responses, params.request_state
        )

    # ---- the MCP server ------------------------------------------------------------------------
    def _make_server(self) -> Server[Any]:
        server: Server[Any] = Server(
            "charter-gateway",
            version="1",
            instructions="Tools behind charter: every call is decided by the policy.",
            on_list_tools=self._on_list_tools,
            on_call_tool=self._on_call_tool,
        )
        # The SDK's default OpenTelemetry middleware opens a span per message (about 70 µs);
        # charter's own observers trace decisions (charter.telemetry), so the gateway drops it.
        server.middleware = []
        return server

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        """Connect the upstream servers for the life of the block."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self.start(stack)
                yield self
        except BaseExceptionGroup as group:  # the sessions' task groups wrap what start raised
            found = group.subgroup(lambda e: isinstance(e, GatewayError))
            if found is None:
                raise
            leaf: BaseException = found
            while isinstance(leaf, BaseExceptionGroup):
                leaf = leaf.exceptions[0]
            raise leaf from None

    async def serve_stdio(self) -> None:
        """Serve one MCP client over this process's stdin/stdout."""
        from mcp.server.stdio import stdio_server

        stdin, stdout = await _pipe_files()
        if self.fast:
            stdin.fast = _StdioFast(self, stdout)
        async with self.running(), stdio_server(stdin, stdout) as (read, write):  # type: ignore[arg-type]
            await self.server.run(read, write, self.server.create_initialization_options())

    async def answer_fast(self, call: FastCall, actor: str | None) -> dict[str, Any]:
        """The JSON-RPC response to a fast-path tools/call: decided and forwarded by :meth:`handle`
        (the same path as the SDK's), put on the wire as the SDK would."""
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": call.id}
        self.fast_calls += 1
        try:
            out = await self.handle(
                actor,
                call.name,
                call.arguments,
                None,
                None,
                elicitation=call.elicitation,
                modern=True,
                ask=None,
                raw=True,
            )
            result, version = out if isinstance(out, tuple) else (out, None)
            reply["result"] = wire_result(
                result, call.version, lambda: self.server.server_info_stamp, raw_version=version
            )
        except UpstreamError as exc:  # the upstream's own JSON-RPC error, passed on
            reply["error"] = exc.error
        except Exception as exc:  # as the SDK maps a handler's exception (no internals on the wire)
            reply["error"] = modern_error_data(exc).model_dump(by_alias=True, mode="json", exclude_none=True)
        return reply


#: fast-path calls in flight on one stdio connection (beyond: the SDK path takes them)
MAX_INFLIGHT = 256


class _StdioFast:
    """The stdio front's fast path: offered every line the agent sends, it takes the tools/call
    requests :func:`parse_call` accepts once the connection is known to be a 2026-07-28 one, and
    writes their answers itself; every other line goes to the SDK untouched.

    The connection's era is the SDK's rule: its first well-formed request decides (an enveloped
    request other than ``initialize``: 2026-07-28; anything else: the handshake era, where the
    fast path stays off for the connection's life).
    """

    def __init__(self, gateway: Gateway, writer: _LineWriter):
        self.gateway = gateway
        self.writer = writer
        self.modern: bool | None = None
        self.inflight: dict[Any, asyncio.Task[None]] = {}

    def offer(self, line: bytes) -> bool:
        """True if the fast path took the line (the SDK must not see it)."""
        if self.modern is False:
            return False
        if self.modern is None:
            self._learn_era(line)
            return False
        if b'"tools/call"' not in line:
            if b"notifications/cancelled" in line:
                self._cancel(line)
            return False
        try:  # only exact UTF-8 JSON is the fast path's (the SDK answers the rest as it does)
            msg = strict_loads(line)
        except ValueError:
            return False
        call = parse_call(msg)
        if call is None or call.id in self.inflight or len(self.inflight) >= MAX_INFLIGHT:
            return False
        task = asyncio.ensure_future(self._run(call))
        self.inflight[call.id] = task
        key = call.id
        task.add_done_callback(lambda _t: self.inflight.pop(key, None))
        return True

    def _learn_era(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError):
            return
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0" or not isinstance(msg.get("method"), str):
            return
        if "id" not in msg:  # a notification does not open the connection
            return
        params = msg.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        self.modern = (
            msg["method"] != "initialize" and isinstance(meta, dict) and PROTOCOL_VERSION_META_KEY in meta
        )

    def _cancel(self, line: bytes) -> None:
        """A client's notifications/cancelled for a fast-path call cancels it (no answer is sent)."""
        try:
            msg = json.loads(line)
            rid = msg["params"]["requestId"]
            task = self.inflight.get(rid) if isinstance(rid, (str, int)) else None
        except (ValueError, RecursionError, KeyError, TypeError):
            return
        if task is not None:
            task.cancel()

    async def _run(self, call: FastCall) -> None:
        reply = await self.gateway.answer_fast(call, self.gateway.agent)
        with contextlib.suppress(OSError):  # the agent went away: nobody to answer
            await self.writer.write(json.dumps(reply, separators=(",", ":")) + "\n")


#: the longest JSON-RPC line read from the agent over stdio (a longer one is dropped and answered
#: with a parse error by the SDK): bounds the memory one message can take
MAX_LINE = 4 * 1024 * 1024


class _LineReader:
    """stdin as the SDK's stdio server reads it (``async for line``), without a worker thread
    per line (anyio's wrap_file reads each line in a thread: a thread hop per message)."""

    def __init__(self, reader: asyncio.StreamReader):
        self._reader = reader
        #: the fast path, offered each line first (None: every line goes to the SDK)
        self.fast: _StdioFast | None = None

    def __aiter__(self) -> _LineReader:
        return self

    async def __anext__(self) -> str:
        while True:
            line = await self._line()
            if self.fast is None or not self.fast.offer(line):
                return line.decode("utf-8", "replace")

    async def _line(self) -> bytes:
        try:
            line = await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise StopAsyncIteration from None
            line = exc.partial
        except asyncio.LimitOverrunError as exc:
            # too long: skip to the end of the line, hand the SDK something it rejects
            await self._reader.readexactly(exc.consumed)
            while True:
                try:
                    await self._reader.readuntil(b"\n")
                    break
                except asyncio.LimitOverrunError as more:
                    await self._reader.readexactly(more.consumed)
                except asyncio.IncompleteReadError:
                    break
            return b"{}"
        return line


class _LineWriter:
    """stdout for the SDK's stdio server: one blocking write per message (small, never a thread)."""

    def __init__(self, fd: int):
        self._fd = fd
        # the SDK's writer and the fast path share stdout: one whole line at a time
        self._lock = asyncio.Lock()

    async def write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        if self._lock.locked():
            async with self._lock:
                await self._drain(data)
            return
        n = self._write(data)
        if n < len(data):  # rare: the pipe is full; finish under the lock (taken without a yield)
            async with self._lock:
                await self._drain(data[n:])

    def _write(self, data: memoryview) -> int:
        try:
            return os.write(self._fd, data)
        except BlockingIOError:
            return 0

    async def _drain(self, data: memoryview) -> None:
        while data:
            try:
                n = os.write(self._fd, data)
            except BlockingIOError:  # stdout shares stdin's (non-blocking) file: wait for room
                await asyncio.sleep(0.001)
                continue
            data = data[n:]

    async def flush(self) -> None:
        return None


async def _pipe_files() -> tuple[_LineReader, _LineWriter]:
    """Thread-free stdin/stdout for the stdio front."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return _LineReader(reader), _LineWriter(sys.stdout.fileno())


def http_app(
    gateway: Gateway,
    *,
    path: str = "/mcp",
    stateless: bool = False,
    json_response: bool = True,
    host: str = "127.0.0.1",
) -> Any:
    """The Streamable HTTP front as an ASGI app: every request must carry a valid bearer token
    (401 otherwise, before any MCP message is read); the token's name is the actor."""
    inner = gateway.server.streamable_http_app(
        streamable_http_path=path, stateless_http=stateless, json_response=json_response, host=host
    )
    lifespan_ctx = inner.router.lifespan_context
    fast = _HttpFast(gateway, json_response) if gateway.fast else None

    async def unauthorised(send: Any) -> None:
        body = b'{"error":"a valid bearer token is required","code":"unauthorized"}'
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer realm="charter-gateway"'),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        token = None
        for k, v in scope.get("headers") or ():
            if k == b"authorization":
                raw = v.decode("latin-1")
                if raw[:7].lower() == "bearer ":
                    token = raw[7:].strip()
                break
        actor = gateway.actor_for_token(token)
        if actor is None:
            await unauthorised(send)
            return
        scope[ACTOR_KEY] = actor
        if fast is not None and scope.get("method") == "POST" and scope.get("path") == path:
            receive = await fast.take(scope, receive, send, actor)
            if receive is None:
                return
        await inner(scope, receive, send)

    async def _lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
        msg = await receive()
        assert msg["type"] == "lifespan.startup"
        started = False
        try:
            async with gateway.running(), lifespan_ctx(inner):
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()  # lifespan.shutdown
        except Exception as exc:
            if started:
                raise
            await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
            return
        # only once the upstream sessions are closed (the server would cancel us after this)
        await send({"type": "lifespan.shutdown.complete"})

    return app


#: the largest request body the HTTP fast path reads (a larger one goes to the SDK, which bounds it)
FAST_MAX_BODY = 1024 * 1024
_PROTOCOL_HEADER = b"mcp-protocol-version"
_MODERN = frozenset(v.encode() for v in MODERN_PROTOCOL_VERSIONS)


class _HttpFast:
    """The HTTP front's fast path: a POST of one well-formed 2026-07-28 ``tools/call`` is checked
    as the SDK checks it (content type, DNS-rebinding Host/Origin rules, Accept, routing headers,
    the envelope, ``Mcp-Param-*`` headers against the tool's schema), decided and forwarded by
    :meth:`Gateway.answer_fast`, and answered with one JSON response. Any other request, or one
    failing a check, goes to the SDK's app with its body replayed: the SDK answers it (with the
    same rejection it always gives)."""

    def __init__(self, gateway: Gateway, json_response: bool):
        from mcp.server.transport_security import TransportSecurityMiddleware

        self.gateway = gateway
        self.json_response = json_response
        self.security = TransportSecurityMiddleware(gateway.server.session_manager.security_settings)
        self._schemas: dict[int, tuple[types.Tool, bool]] = {}

    async def take(self, scope: dict[str, Any], receive: Any, send: Any, actor: str) -> Any:
        """None if the request was answered here; else the ``receive`` the SDK's app must use."""
        from mcp.server.streamable_http import check_accept_headers
        from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS, validate_mcp_param_headers

        raw = scope.get("headers") or ()
        version = next((v for k, v in raw if k == _PROTOCOL_HEADER), None)
        if version not in _MODERN:
            return receive  # the handshake era: the SDK's sessions
        # the headers decoded once (starlette's Headers decodes on every lookup); the SDK's checks
        # only read ``request.headers``, so they are given this view
        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
        headers = dict(pairs)
        if len(headers) != len(pairs):
            return receive  # a header given twice: which copy counts is the SDK's to say
        view = _Headers(headers)
        if await self.security.validate_request(view, is_post=True) is not None:  # type: ignore[arg-type]
            return receive
        has_json, has_sse = check_accept_headers(view)  # type: ignore[arg-type]
        if not has_json or (not self.json_response and not has_sse):
            return receive
        size = headers.get("content-length", "")
        if not size.isdigit() or int(size) > FAST_MAX_BODY:
            return receive
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None  # the client left before sending its request: nothing to answer
            body += message.get("body", b"")
            if len(body) > int(size):
                break
            if not message.get("more_body", False):
                break
        replay = _replay(bytes(body), receive)
        if len(body) != int(size):
            return replay
        try:  # only exact UTF-8 JSON is the fast path's; anything else gets the SDK's answer
            decoded = strict_loads(body)
        except ValueError:
            return replay
        if any(k.startswith("mcp-param-") for k in headers):
            return replay  # the SDK validates those against the tool's listed schema
        call = parse_call(decoded, headers=headers)
        if call is None:
            return replay
        route = self.gateway.routes.get(call.name)
        # as the SDK does with the schema the agent was shown: arguments a schema says must be
        # mirrored in Mcp-Param-* headers are refused without them (by the SDK: it answers); a
        # schema without x-mcp-header annotations has nothing to check
        if (
            call.arguments
            and route is not None
            and self._annotated(route.tool)
            and self.gateway.filter.visible(actor, route.target)
            and validate_mcp_param_headers(route.tool.input_schema, call.arguments, headers) is not None
        ):
            return replay
        reply = await self.gateway.answer_fast(call, actor)
        status = 200
        error = reply.get("error")
        if isinstance(error, dict) and isinstance(error.get("code"), int):
            status = ERROR_CODE_HTTP_STATUS.get(error["code"], 200)
        payload = json.dumps(reply, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        return None

    def _annotated(self, tool: types.Tool) -> bool:
        """Whether a tool's input schema has ``x-mcp-header`` annotations (memoised per tool)."""
        found = self._schemas.get(id(tool))
        if found is None or found[0] is not tool:
            found = (tool, "x-mcp-header" in json.dumps(tool.input_schema, default=str))
            if len(self._schemas) > 10_000:
                self._schemas.clear()
            self._schemas[id(tool)] = found
        return found[1]


class _Headers:
    """What the SDK's header checks read of a request: ``headers.get`` (lower-case names)."""

    __slots__ = ("headers",)

    def __init__(self, headers: dict[str, str]):
        self.headers = _LowerDict(headers)


class _LowerDict(dict[str, str]):
    """The decoded headers; lookups by any case, as starlette's Headers allows."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that gives the already-read body first, then the client's further messages."""
    sent = False

    async def again() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
