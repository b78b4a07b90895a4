"""The sidecar's ASGI app (Starlette): thin handlers over the public engine API, auth and limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from charter.extras import missing_extra

try:
    from starlette.applications import Starlette
    from starlette.requests import Request as HttpRequest
    from starlette.responses import Response
    from starlette.routing import Route
except ImportError as _exc:  # an optional dependency: name the extra to install
    raise missing_extra("server", "the sidecar (charter serve)", _exc) from _exc

from charter import __version__
from charter.approvals import HumanError
from charter.approvals.identity import Channel
from charter.engine.grants import GrantError
from charter.engine.validate import check_run_id
from charter.enums import HitKind
from charter.errors import RequestError, RunImportError, UnknownDecision, UnknownRun
from charter.jsonenc import StrictJsonError, strict_loads
from charter.server import wire
from charter.server.auth import Principal, TokenSet
from charter.server.fast import HttpLike, SidecarApp
from charter.server.inbox import Inbox
from charter.server.runtime import Runtime
from charter.state.memory import MemoryStore
from charter.telemetry import TRACEPARENT

log = logging.getLogger("charter.server")
T = TypeVar("T")
_ANON = Principal("anonymous", frozenset({"admin"}))
#: HumanError codes that mean "you may not" (403) or "no such thing" (404); others are 409.
_FORBIDDEN = frozenset({"not-approver", "self-approval", "not-operator", "not-target"})


#: The header the `charter` command line sends, so the trace says a person answered through it.
CLIENT_HEADER = "x-charter-client"


def channel(request: HttpLike) -> Channel:
    """How a person reached the API: the command line says so in a header, anything else is HTTP.
    (Only the label depends on it: who acted is always the token's name.)"""
    return Channel.CLI if request.headers.get(CLIENT_HEADER, "").lower() == "cli" else Channel.HTTP


class ApiError(Exception):
    """An error response: status, machine code, message and (for a malformed request) the field."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, retry_after: int | None = None
    ):
        super().__init__(message)
        self.status, self.code, self.field = status, code, field
        #: seconds a refused caller should wait (a 429 carries it as Retry-After)
        self.retry_after = retry_after


#: Bodies above this many bytes are "heavy": read on the loop, then parsed, validated and decided
#: on the heavy worker, so the event loop keeps answering small requests (docs/security.md).
HEAVY_BODY = 64 * 1024
#: The interpreter's GIL switch interval while the sidecar runs (see Sidecar.lifespan).
SWITCH_INTERVAL_S = 0.001


#: json.dumps(data, separators=(",", ":"), default=str), without building an encoder per call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), default=str).encode


def _dumps(data: Any) -> bytes:
    return _ENCODE(data).encode("utf-8")


def respond(data: Any, status: int = 200) -> Response:
    """A JSON response."""
    return Response(_dumps(data), status, media_type="application/json")


_INTERNAL = ApiError(500, "internal", "internal error; treat the action as not allowed")


def _error(exc: ApiError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.retry_after is not None:
        headers = {"Retry-After": str(exc.retry_after)}
    body = {"error": str(exc), "code": exc.code, "field": exc.field}
    return Response(_dumps(body), exc.status, headers=headers, media_type="application/json")


def _path_run(request: HttpRequest) -> str:
    """The ``{run}`` of a run route, checked by the one rule for run ids (a malformed URL: 400)."""
    try:
        return check_run_id(request.path_params["run"])
    except RequestError as exc:
        raise ApiError(400, "malformed", str(exc), "run") from None


def _loc(err: ValidationError) -> tuple[str, str]:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return field, f"{field}: {first.get('msg', 'invalid')}"


class Sidecar:
    """Holds the runtime, tokens and limits; its methods are the route handlers."""

    def __init__(
        self,
        runtime: Runtime,
        tokens: TokenSet | None = None,
        *,
        no_auth: bool = False,
        max_body: int = 1 << 20,
        time_limit_s: float = 2.0,
        threads: int = 64,
        heavy_body: int = HEAVY_BODY,
        heavy_per_caller: int = 1,
        heavy_queue: int = 8,
    ):
        if not no_auth and not tokens:
            raise ValueError("no bearer tokens configured (give --tokens or CHARTER_TOKENS, or --no-auth)")
        self.rt = runtime
        self.tokens = tokens or TokenSet()
        self.no_auth = no_auth
        self.max_body = max_body
        self.time_limit_s = time_limit_s
        self._threads, self._pool_closed = threads, False
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="charter-io")
        #: MemoryStore calls never block: run them on the loop (no thread hop on the hot path).
        self.inline = type(runtime.store) is MemoryStore
        #: heavy requests (body over ``heavy_body`` bytes) are decided on one worker thread, at most
        #: ``heavy_per_caller`` in flight per caller and ``heavy_queue`` in all (429 beyond): a caller
        #: sending the largest admitted input cannot hold the event loop or queue unbounded work.
        self.heavy_body = min(heavy_body, max_body)
        self.heavy_per_caller = heavy_per_caller
        self.heavy_queue = heavy_queue
        self.heavy = ThreadPoolExecutor(1, thread_name_prefix="charter-heavy")
        self._heavy_in: dict[str, int] = {}
        self.spec = wire.openapi(__version__)

    # ---- plumbing ------------------------------------------------------------------------------
    async def call(self, fn: Callable[..., T], *args: Any, inline: bool | None = None) -> T:
        """Run a (possibly blocking) engine call: inline for the memory store, else on the pool."""
        if self.inline if inline is None else inline:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def principal(self, request: HttpLike, permission: str | None) -> Principal:
        """The caller, from its bearer token; 401 without a valid one, 403 without the role."""
        if self.no_auth:
            return _ANON
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthenticated", "a bearer token is required (Authorization: Bearer ...)")
        who = self.tokens.lookup(token.strip())
        if who is None:
            raise ApiError(401, "unauthenticated", "unknown bearer token")
        if permission is not None and not who.may(permission):
            roles = ", ".join(sorted(who.roles))
            raise ApiError(403, "forbidden", f"{who.name} ({roles}) may not {permission}")
        return who

    async def body(self, request: HttpLike) -> Any:
        """The JSON body, at most ``max_body`` bytes (413), valid JSON (400)."""
        return self.parse(await self.raw(request))

    @staticmethod
    def parse(raw: bytes) -> Any:
        """``raw`` as JSON (400 ``bad-json`` if it is not exactly one UTF-8 JSON text: see
        :func:`charter.jsonenc.strict_loads`)."""
        try:
            return strict_loads(raw)
        except StrictJsonError as exc:
            raise ApiError(400, "bad-json", f"request body is not valid JSON: {exc}", "body") from None

    async def raw(self, request: HttpLike) -> bytes:
        """The body's bytes, at most ``max_body`` (413)."""
        cl = request.headers.get("content-length")
        if cl is not None:
            if not cl.isdigit():
                raise ApiError(400, "bad-request", "invalid Content-Length")
            if int(cl) > self.max_body:
                raise ApiError(413, "too-large", f"request body over {self.max_body} bytes")
            raw = await request.body()
        else:
            parts, n = [], 0
            async for chunk in request.stream():
                n += len(chunk)
                if n > self.max_body:
                    raise ApiError(413, "too-large", f"request body over {self.max_body} bytes")
                parts.append(chunk)
            raw = b"".join(parts)
        return raw

    async def model(self, request: HttpRequest, cls: type[BaseModel]) -> Any:
        """The body validated as a wire type (422 naming the field)."""
        data = await self.body(request)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            field, msg = _loc(exc)
            raise ApiError(422, "malformed", msg, field) from None

    def route(
        self, permission: str | None, handler: Callable[..., Awaitable[Any]], timed: bool = True
    ) -> Callable[[Any], Awaitable[Response]]:
        """Wrap a handler: auth, time limit, errors mapped to JSON responses (never a traceback)."""

        async def endpoint(request: HttpLike) -> Response:
            try:
                who = self.principal(request, permission) if permission != "public" else _ANON
                if timed and not self.inline:  # memory store: nothing blocks, nothing to cut
                    out = await asyncio.wait_for(handler(request, who), self.time_limit_s)
                else:
                    out = await handler(request, who)
                return out if isinstance(out, Response) else respond(out)
            except ApiError as exc:
                self.rt.metrics.reject(exc.status)
                return _error(exc)
            except TimeoutError:
                self.rt.metrics.count("timeouts")
                self.rt.metrics.reject(503)
                return _error(
                    ApiError(
                        503,
                        "timeout",
                        f"no answer within {self.time_limit_s:g} s; treat the action as not allowed",
                    )
                )
            except Exception:
                log.exception("internal error on %s %s", request.method, request.url.path)
                return _error(_INTERNAL)

        return endpoint

    # ---- deciding ------------------------------------------------------------------------------
    async def decide(self, request: HttpLike, who: Principal) -> Response:
        cl = request.headers.get("content-length")
        if self.inline and (cl is None or not cl.isdigit() or int(cl) > self.heavy_body):
            return await self._heavy(request, who)  # (an invalid Content-Length is refused there)
        data = self._data(self.parse(await self.raw(request)), request)
        engine = self.rt.engine
        t0 = time.perf_counter()
        bridge = self.rt.bridge
        if self.inline:
            d = self._decide(engine, data)
        else:
            if bridge is not None and bridge.active:  # Redis: awaited on this loop, no thread
                fut: asyncio.Future[Any] = asyncio.ensure_future(bridge.run(self._decide, engine, data))
            else:
                fut = asyncio.get_running_loop().run_in_executor(self.pool, self._decide, engine, data)
            try:
                d = await asyncio.shield(fut)
            except asyncio.CancelledError:
                fut.add_done_callback(lambda f: self._late(engine, f))
                raise
        self.rt.metrics.observe(d.outcome.value, time.perf_counter() - t0, d.failures)
        return Response(_dumps(d.to_dict()), 200, media_type="application/json")

    @staticmethod
    def _data(data: Any, request: HttpLike) -> dict[str, Any]:
        """The parsed body as a request object (422 if it is not one), with the W3C trace context."""
        if not isinstance(data, dict):
            raise ApiError(422, "malformed", "the request must be a JSON object", "body")
        parent = request.headers.get("traceparent")
        if parent and data.get("trace_id") is None and TRACEPARENT.match(parent.strip().lower()):
            data["trace_id"] = parent.strip().lower()  # W3C trace context: kept in the trace record
        return data

    async def _heavy(self, request: HttpLike, who: Principal) -> Response:
        """A heavy decide (memory store): a slot for the caller first (429 if it has its share in
        flight or the worker's queue is full), then the body is read on the loop and parsed,
        validated and decided on the heavy worker; the loop only waits."""
        mine = self._heavy_in.get(who.name, 0)
        if mine >= self.heavy_per_caller or sum(self._heavy_in.values()) >= self.heavy_queue:
            await self.raw(request)  # drained (bytes only, bounded), so the connection stays usable
            raise ApiError(
                429,
                "busy",
                f"{who.name} already has {mine} large request(s) in flight (at most "
                f"{self.heavy_per_caller}) or the large-request queue is full; retry later, "
                "and treat the action as not allowed until then",
                retry_after=1,
            )
        self._heavy_in[who.name] = mine + 1
        try:
            raw = await self.raw(request)
            engine = self.rt.engine
            t0 = time.perf_counter()

            def work() -> Any:
                return self._decide(engine, self._data(self.parse(raw), request))

            fut = asyncio.get_running_loop().run_in_executor(self.heavy, work)
            try:
                d = await asyncio.shield(fut)
            except asyncio.CancelledError:
                fut.add_done_callback(lambda f: self._late(engine, f))
                raise
        finally:
            left = self._heavy_in[who.name] - 1
            if left:
                self._heavy_in[who.name] = left
            else:
                del self._heavy_in[who.name]
        self.rt.metrics.observe(d.outcome.value, time.perf_counter() - t0, d.failures)
        return Response(_dumps(d.to_dict()), 200, media_type="application/json")

    @staticmethod
    def _decide(engine: Any, data: dict[str, Any]) -> Any:
        try:
            d = engine.decide(data)
        except RequestError as exc:
            raise ApiError(422, "malformed", str(exc), exc.field) from None
        if d.rules and d.rules[0].kind is HitKind.IDEMPOTENCY:
            raise ApiError(409, "idempotency-conflict", d.rules[0].reason, "idempotency_key")
        return d

    @staticmethod
    def _late(engine: Any, fut: Any) -> None:
        """A decision that finished after its caller got 503: give back any budget it reserved."""
        if fut.cancelled() or fut.exception() is not None:
            return
        d = fut.result()
        if d.hold_id:
            with contextlib.suppress(Exception):
                engine.store.release(d.hold_id, now=time.time())

    async def settle(self, request: HttpRequest, who: Principal) -> Any:
        body: wire.SettleRequest = await self.model(request, wire.SettleRequest)
        engine = self.rt.engine
        try:
            st = await self.call(
                lambda: engine.settle(
                    body.decision_id,
                    actual_cost=body.actual_cost,
                    outcome=body.outcome,
                    labels=tuple(body.labels),
                    result=body.result,
                )
            )
        except UnknownDecision:
            raise ApiError(
                404,
                "unknown",
                f"unknown or already settled decision {body.decision_id!r} "
                "(settle on the replica that decided)",
            ) from None
        except RequestError as exc:  # an invalid settlement (SettleError): nothing was committed
            raise ApiError(422, "malformed", str(exc), exc.field) from None
        return st.to_dict()

    # ---- runs ------------------------------------------------------------------------------------
    async def begin_run(self, request: HttpRequest, who: Principal) -> Any:
        body: wire.BeginRunRequest = await self.model(request, wire.BeginRunRequest)
        engine = self.rt.engine
        try:
            run = await self.call(
                lambda: engine.begin_run(body.run, actor=body.actor, grants=body.grants, labels=body.labels)
            )
        except GrantError as exc:
            status = 409 if exc.run_started else 422
            code = "run-started" if exc.run_started else "grants-refused"
            out = {
                "error": str(exc),
                "code": code,
                "field": "grants" if status == 422 else None,
                "diagnostics": [p.to_dict() for p in exc.problems],
                "refused": list(exc.refused),
            }
            return respond(out, status)
        except RequestError as exc:
            raise ApiError(422, "malformed", str(exc), exc.field) from None
        return respond(run.to_dict(), 201)

    async def narrow_run(self, request: HttpRequest, who: Principal) -> Any:
        body: wire.NarrowRunRequest = await self.model(request, wire.NarrowRunRequest)
        engine, run = self.rt.engine, _path_run(request)
        try:
            out = await self.call(lambda: engine.narrow_run(run, revoke=body.revoke, uses=body.uses))
        except RequestError as exc:
            raise ApiError(422, "malformed", str(exc), exc.field) from None
        return out.to_dict()

    async def import_run(self, request: HttpRequest, who: Principal) -> Any:
        body: wire.RunImportBody = await self.model(request, wire.RunImportBody)
        engine = self.rt.engine
        run = _path_run(request)
        try:
            done = await self.call(
                lambda: engine.import_run(run, actor=body.actor, events=body.events, charge=body.charge)
            )
        except RunImportError as exc:  # malformed: nothing was written
            raise ApiError(400, "malformed", str(exc), "events") from None
        return done.to_dict()

    async def export_run(self, request: HttpRequest, who: Principal) -> Any:
        engine = self.rt.engine
        run = _path_run(request)
        try:
            return await self.call(lambda: engine.export_run(run))
        except UnknownRun as exc:
            raise ApiError(404, "unknown-run", str(exc), "run") from None

    async def explain(self, request: HttpRequest, who: Principal) -> Any:
        did = request.path_params["decision_id"]
        trace = self.rt.trace
        if trace is None:
            raise ApiError(404, "no-trace", "this sidecar keeps no trace (start it with --trace)")
        from charter.trace.story import story

        def read() -> tuple[Any, list[str]]:
            trace.flush(5.0)
            return story(trace.path, did)

        rec, lines = await self.call(read, inline=False)
        if rec is None:
            raise ApiError(404, "unknown", f"no traced decision {did!r}")
        return {"record": rec, "explanation": lines}

    # ---- humans ----------------------------------------------------------------------------------
    async def _human(self, fn: Callable[[], T]) -> T:
        try:
            return await self.call(fn)
        except HumanError as exc:
            status = 404 if exc.code == "unknown" else 403 if exc.code in _FORBIDDEN else 409
            raise ApiError(status, exc.code, str(exc)) from None

    async def approvals(self, request: HttpRequest, who: Principal) -> Any:
        status = request.query_params.get("status")
        return {"items": await self._human(lambda: self.rt.engine.approvals.list(status))}

    async def approval(self, request: HttpRequest, who: Principal) -> Any:
        return await self._human(lambda: self.rt.engine.approvals.get(request.path_params["approval_id"]))

    async def approve(self, request: HttpRequest, who: Principal) -> Any:
        body: wire.NoteBody = await self.model(request, wire.NoteBody)
        aid = request.path_params["approval_id"]
        via = channel(request)
        return await self._human(lambda: self.rt.engine.approvals.approve(aid, who.name, body.note, via=via))

    async def deny(self, request: HttpRequest, who: Principal) -> Any:
        body: wire.NoteBody = await self.model(request, wire.NoteBody)
        aid = request.path_params["approval_id"]
        via = channel(request)
        return await self._human(lambda: self.rt.engine.approvals.deny(aid, who.name, body.note, via=via))

    async def escalations(self, request: HttpRequest, who: Principal) -> Any:
        status = request.query_params.get("status")
        return {"items": await self._human(lambda: self.rt.engine.escalations.list(status))}

    async def escalation(self, request: HttpRequest, who: Principal) -> Any:
        eid = request.path_params["escalation_id"]
        return await self._human(lambda: self.rt.engine.escalations.get(eid))

    async def answer(self, request: HttpRequest, who: Principal) -> Any:
        body: wire.AnswerBody = await self.model(request, wire.AnswerBody)
        eid = request.path_params["escalation_id"]
        via = channel(request)
        return await self._human(
            lambda: self.rt.engine.escalations.answer(eid, who.name, body.verdict, body.note, via=via)
        )

    async def stops(self, request: HttpRequest, who: Principal) -> Any:
        return {"items": [s.to_dict() for s in await self._human(self.rt.engine.stops.list)]}

    async def stop_log(self, request: HttpRequest, who: Principal) -> Any:
        return {"items": await self._human(self.rt.engine.stops.log)}

    async def stop(self, request: HttpRequest, who: Principal) -> Any:
        body: wire.StopBody = await self.model(request, wire.StopBody)
        stops = self.rt.engine.stops
        via = channel(request)
        rec = await self._human(lambda: stops.stop(body.scope, body.value, body.reason, who.name, via=via))
        log.warning("stop %s=%s by %s", body.scope, body.value, who.name)
        return rec.to_dict()

    async def resume(self, request: HttpRequest, who: Principal) -> Any:
        body: wire.ResumeBody = await self.model(request, wire.ResumeBody)
        via = channel(request)
        return await self._human(
            lambda: self.rt.engine.stops.resume(body.scope, body.value, who.name, body.reason, via=via)
        )

    # ---- operations ------------------------------------------------------------------------------
    async def livez(self, request: HttpRequest, who: Principal) -> Any:
        return {"status": "ok", "revision": self.rt.engine.policy.revision}

    async def readyz(self, request: HttpRequest, who: Principal) -> Response:
        checks, reasons = await self.call(self.rt.readiness, inline=False)
        ok = all(checks.values())
        body = {
            "status": "ok" if ok else "unavailable",
            "checks": checks,
            "reasons": reasons,
            "revision": self.rt.engine.policy.revision,
            "reload_error": self.rt.reload_error,
        }
        return respond(body, 200 if ok else 503)

    async def metrics(self, request: HttpRequest, who: Principal) -> Response:
        store = self.rt.store

        def gauges() -> tuple[int | None, int | None]:
            try:
                pending = sum(1 for d in store.list_records("approval") if d.get("status") == "pending")
                return pending, len(store.list_stops())
            except Exception:
                self.rt.metrics.count("store_errors")
                return None, None

        pending, stops = await self.call(gauges, inline=False)
        policy = self.rt.engine.policy
        text = self.rt.metrics.render(
            revision=policy.revision,
            name=policy.name,
            loaded_at=self.rt.loaded_at,
            pending=pending,
            stops=stops,
            reload_error=self.rt.reload_error,
            notifications=self.rt.dispatcher.stats() if self.rt.dispatcher else (),
            exports=[(e.sink.name, e.metrics()) for e in self.rt.exporters],
        )
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(self, request: HttpRequest, who: Principal) -> Any:
        return self.spec

    # ---- the app ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """Every route with the permission it needs."""
        r, v = self.route, f"/{wire.API_VERSION}"
        return [
            Route(f"{v}/decide", r("decide", self.decide), methods=["POST"]),
            Route(f"{v}/settle", r("decide", self.settle), methods=["POST"]),
            Route(f"{v}/runs", r("decide", self.begin_run), methods=["POST"]),
            Route(f"{v}/runs/{{run}}/narrow", r("decide", self.narrow_run), methods=["POST"]),
            Route(f"{v}/runs/{{run}}/history", r("decide", self.import_run), methods=["POST"]),
            Route(f"{v}/runs/{{run}}", r("decide", self.export_run), methods=["GET"]),
            Route(f"{v}/decisions/{{decision_id}}", r("read", self.explain), methods=["GET"]),
            Route(f"{v}/approvals", r("read-humans", self.approvals), methods=["GET"]),
            Route(f"{v}/approvals/{{approval_id}}", r("read-humans", self.approval), methods=["GET"]),
            Route(f"{v}/approvals/{{approval_id}}/approve", r("answer", self.approve), methods=["POST"]),
            Route(f"{v}/approvals/{{approval_id}}/deny", r("answer", self.deny), methods=["POST"]),
            Route(f"{v}/escalations", r("read-humans", self.escalations), methods=["GET"]),
            Route(f"{v}/escalations/{{escalation_id}}", r("read-humans", self.escalation), methods=["GET"]),
            Route(f"{v}/escalations/{{escalation_id}}/answer", r("answer", self.answer), methods=["POST"]),
            Route(f"{v}/stops", r("read-stops", self.stops), methods=["GET"]),
            Route(f"{v}/stops", r("stop", self.stop), methods=["POST"]),
            Route(f"{v}/stops/resume", r("stop", self.resume), methods=["POST"]),
            Route(f"{v}/stops/log", r("read-stops", self.stop_log), methods=["GET"]),
            Route("/livez", r("public", self.livez), methods=["GET"]),
            Route("/readyz", r("public", self.readyz), methods=["GET"]),
            Route("/metrics", r("public", self.metrics), methods=["GET"]),
            Route("/openapi.json", r("public", self.openapi), methods=["GET"]),
        ]

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Start the policy watcher and the SIGHUP handler; close everything on shutdown."""
        if self._pool_closed:  # a second lifespan (test clients) gets a fresh pool
            self.pool = ThreadPoolExecutor(self._threads, thread_name_prefix="charter-io")
            self.heavy = ThreadPoolExecutor(1, thread_name_prefix="charter-heavy")
            self._pool_closed = False
        # The heavy worker holds the GIL for up to a decision's budget (~40 ms of CPU); the loop
        # thread waiting for it gets it after the switch interval, and it waits once per I/O step
        # of a small request. 1 ms instead of CPython's 5 ms keeps that wait short (it only
        # matters while two threads want the GIL, so small decisions alone cost the same).
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, SWITCH_INTERVAL_S))
        self.rt.start()
        if self.rt.bridge is not None:
            await self.rt.bridge.start()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, lambda: self.pool.submit(self.rt.reload, "SIGHUP"))
        log.info(
            "charter sidecar ready: policy %s revision %s, store %s",
            self.rt.engine.policy.name,
            self.rt.engine.policy.revision,
            self.rt.store.backend,
        )
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signal.SIGHUP)
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.heavy.shutdown(wait=False, cancel_futures=True)
            self._pool_closed = True
            sys.setswitchinterval(switch)
            if self.rt.bridge is not None:
                with contextlib.suppress(Exception):
                    await self.rt.bridge.stop()
            self.rt.close()

    def app(self) -> Starlette:
        """The Starlette application, with the lean path for POST /v1/decide in front of it."""
        app = SidecarApp(
            self.route("decide", self.decide),
            inline=self.inline,
            max_body=self.heavy_body if self.inline else self.max_body,
            internal_error=lambda: _error(_INTERNAL),
            routes=[*self.routes(), *Inbox(self).routes()],
            lifespan=self.lifespan,
        )
        # Starlette's trailing-slash redirect builds an absolute Location from the request's Host
        # header (reflecting whatever a caller sends); the sidecar's own redirects are relative paths
        # (see inbox.routes.see_other), and a path with an extra slash is simply not found.
        app.router.redirect_slashes = False
        return app


def create_app(runtime: Runtime, tokens: TokenSet | None = None, **kw: Any) -> Starlette:
    """The sidecar app over ``runtime`` (see :class:`Sidecar` for the keyword options)."""
    return Sidecar(runtime, tokens, **kw).app()
