"""The inbox's routes: sign-in, pages, form posts (CSRF-checked, role-checked) and live updates (SSE).

Thin: every act goes through the engine's public API (``engine.approvals``, ``engine.escalations``,
``engine.stops``) with ``via=Channel.INBOX`` and the name the session's token carries; all state is
in the store (sessions are signed cookies, sign-outs and the change mark are store records), so any
replica can serve any request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from charter.extras import missing_extra

try:
    from starlette.requests import Request
    from starlette.responses import RedirectResponse, Response, StreamingResponse
    from starlette.routing import BaseRoute, Route
except ImportError as _exc:  # an optional dependency: name the extra to install
    raise missing_extra("server", "the approvals inbox", _exc) from _exc

from charter.approvals import HumanError
from charter.approvals.escalations import current_step
from charter.approvals.identity import Channel
from charter.server.auth import Principal
from charter.server.inbox import assets, pages
from charter.server.inbox.html import Html
from charter.server.inbox.pages import PREFIX, Viewer, url
from charter.server.inbox.session import COOKIE, Session, SessionKeys, Sessions
from charter.state import StoreError

if TYPE_CHECKING:
    from charter.server.app import Sidecar

log = logging.getLogger("charter.inbox")
#: HumanError codes that mean "you may not" (403) and "no such thing" (404); the rest are 409.
_FORBIDDEN = frozenset({"not-approver", "self-approval", "not-operator", "not-target"})
MAX_FORM = 64 * 1024
#: seconds between reads of the store's change mark (the live-update latency floor)
POLL_S = 0.2
#: seconds between full comparisons (catches writers that do not move the mark, and moves
#: escalations up their chains on time)
SWEEP_S = 5.0
#: an event stream ends after this long; the browser reconnects (bounds shutdown and stale sessions)
STREAM_S = 300.0
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class Refused(Exception):
    """A request the inbox answers with an HTML page and a status (401, 403, 404, 409, 413, 503)."""

    def __init__(self, status: int, title: str, text: str):
        super().__init__(text)
        self.status, self.title, self.text = status, title, text


def html(body: Html | str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An HTML page with the inbox's security headers."""
    return Response(
        str(body), status, headers={**_SECURITY_HEADERS, **(headers or {})}, media_type="text/html"
    )


def see_other(path: str) -> RedirectResponse:
    """A 303 to a path of ours (never a URL built from the request's Host)."""
    return RedirectResponse(path, 303, headers={"Cache-Control": "no-store"})


class Changes:
    """One poller per process: watches the store's change mark and tells the open event streams."""

    def __init__(self, inbox: Inbox):
        self.inbox = inbox
        self.version = ""
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.listeners = 0
        self._sweep = ""
        #: set once the first reading is in (a stream's first event is a real version)
        self.ready = asyncio.Event()

    def start(self) -> None:
        """Start polling if not yet running (the first stream opens it)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _read(self) -> str:
        return await self.inbox.sidecar.call(self.inbox.rt.feed.mark, inline=False) or ""

    async def _run(self) -> None:
        last_sweep = 0.0
        idle_since: float | None = None
        while True:
            try:
                mark = await self._read()
                if time.monotonic() - last_sweep >= SWEEP_S:
                    last_sweep = time.monotonic()
                    self._sweep = await self.inbox.sidecar.call(self.inbox.fingerprint, inline=False)
                version = f"{mark}/{self._sweep}"
                if version != self.version:
                    self.version = version
                    self._event.set()
                    self._event = asyncio.Event()
                self.ready.set()
            except Exception:  # a store fault: keep the streams open, try again
                log.debug("inbox change poll failed", exc_info=True)
            if self.listeners == 0:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 30:
                    return
            else:
                idle_since = None
            await asyncio.sleep(POLL_S)

    async def wait(self, seen: str, timeout: float) -> str:
        """The version once it differs from ``seen`` (or the same one after ``timeout``)."""
        if self.version != seen:
            return self.version
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        return self.version


class Inbox:
    """The /ui routes over a Sidecar (its runtime, tokens, thread pool)."""

    def __init__(self, sidecar: Sidecar):
        self.sidecar = sidecar
        self.rt = sidecar.rt
        settings = self.rt.humans.inbox
        self.settings = settings
        self.sessions = Sessions(SessionKeys(self.rt.store, settings.session_key), settings.session_s)
        self.changes: Changes | None = None

    # ---- identity ----------------------------------------------------------------------------
    def _principal(self, s: Session) -> Principal | None:
        found = self.sidecar.tokens.by_tag(s.tag)
        if found is None or found[1].name != s.name:
            return None  # the token was removed or renamed: the session ends
        return found[1]

    def _signed_in(self, request: Request, post: bool) -> tuple[Session, Principal, str] | None:
        """The session, its person, and (for pages) the change mark read before any page data."""
        s = self.sessions.read(request.cookies.get(COOKIE))
        if s is None:
            return None
        p = self._principal(s)
        if p is None:
            return None
        return s, p, "" if post else (self.rt.feed.mark() or "")

    def viewer(self, s: Session, p: Principal) -> Viewer:
        """What the page shows this person (permissions from the token's roles, now)."""
        perms = ("read", "read-humans", "read-stops", "answer", "stop")
        return Viewer(p.name, p.roles, self.sessions.csrf(s), {k: p.may(k) for k in perms})

    def _cookie(self, request: Request) -> dict[str, Any]:
        secure = request.url.scheme == "https" or self.settings.secure_cookies
        return {"httponly": True, "samesite": "strict", "secure": secure, "path": PREFIX}

    # ---- the wrapper every route goes through ------------------------------------------------
    def page(
        self, permission: str | None, handler: Callable[..., Awaitable[Response]], post: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """Sign-in, CSRF (on posts), permission, and errors as HTML pages (never a traceback)."""

        async def endpoint(request: Request) -> Response:
            t0 = time.perf_counter()
            response = await inner(request)
            if not isinstance(response, StreamingResponse):  # how long the page took (devtools show it)
                response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1000:.1f}"
            return response

        async def inner(request: Request) -> Response:
            viewer = None
            try:
                if self.sidecar.no_auth or not self.sidecar.tokens:
                    raise Refused(
                        503,
                        "Inbox unavailable",
                        "The inbox signs people in with the sidecar's tokens; start charter serve "
                        "with --tokens.",
                    )
                who = await self.sidecar.call(lambda: self._signed_in(request, post), inline=False)
                if who is None:
                    if post:
                        raise Refused(401, "Signed out", "Your session has ended; sign in again.")
                    return see_other(url("login"))
                s, p, mark = who
                request.state.session = s
                viewer = self.viewer(s, p)
                viewer.mark = mark
                form: dict[str, str] = {}
                if post:
                    form = await self.form(request)
                    self.check_origin(request)
                    presented = form.get("csrf") or request.headers.get("x-csrf-token")
                    if not self.sessions.csrf_ok(s, presented):
                        raise Refused(
                            403, "Refused", "The form's CSRF token is missing or wrong; reload and retry."
                        )
                if permission is not None and not p.may(permission):
                    raise Refused(
                        403,
                        "Not allowed",
                        f"{p.name} ({', '.join(sorted(p.roles))}) may not {permission.replace('-', ' ')}.",
                    )
                return await handler(request, viewer, p, form)
            except Refused as exc:
                return html(pages.message_page(exc.title, exc.text, viewer), exc.status)
            except StoreError as exc:
                log.warning("inbox: state store error: %s", exc)
                return html(
                    pages.message_page(
                        "Unavailable", "The state store cannot be reached; try again.", viewer
                    ),
                    503,
                )
            except Exception:
                log.exception("inbox: internal error on %s %s", request.method, request.url.path)
                return html(
                    pages.message_page("Error", "Something went wrong; nothing was changed.", viewer), 500
                )

        return endpoint

    async def form(self, request: Request) -> dict[str, str]:
        """An urlencoded form body (at most 64 KiB; the last value of a repeated field wins)."""
        if request.headers.get("content-type", "").split(";")[0].strip() not in (
            "application/x-www-form-urlencoded",
            "",
        ):
            raise Refused(415, "Refused", "Forms are sent urlencoded.")
        chunks, n = [], 0
        async for chunk in request.stream():
            n += len(chunk)
            if n > MAX_FORM:
                raise Refused(413, "Too large", "The form is too large.")
            chunks.append(chunk)
        try:
            parsed = parse_qs(b"".join(chunks).decode("utf-8"), keep_blank_values=True, max_num_fields=50)
        except (UnicodeDecodeError, ValueError):
            raise Refused(400, "Refused", "The form could not be read.") from None
        return {k: v[-1] for k, v in parsed.items()}

    @staticmethod
    def check_origin(request: Request) -> None:
        """A browser's Origin (when sent) must be this server (defence in depth beside the token)."""
        origin = request.headers.get("origin")
        if origin is None:
            return
        host = request.headers.get("host", "")
        if origin not in (f"http://{host}", f"https://{host}"):
            raise Refused(403, "Refused", "This form was posted from another site.")

    async def call(self, fn: Callable[[], Any]) -> Any:
        """An engine call on the pool; a person's refusal becomes a page with the API's status."""
        try:
            return await self.sidecar.call(fn, inline=False)
        except HumanError as exc:
            status = 404 if exc.code == "unknown" else 403 if exc.code in _FORBIDDEN else 409
            raise Refused(status, "Refused" if status != 404 else "Not found", str(exc)) from None

    # ---- sign-in -----------------------------------------------------------------------------
    async def login_form(self, request: Request) -> Response:
        if self.sidecar.no_auth or not self.sidecar.tokens:
            return html(
                pages.message_page(
                    "Inbox unavailable",
                    "The inbox signs people in with the sidecar's tokens; start charter serve with --tokens.",
                    None,
                ),
                503,
            )
        done = request.query_params.get("done")
        return html(pages.sign_in(done=done))

    async def login(self, request: Request) -> Response:
        try:
            if self.sidecar.no_auth or not self.sidecar.tokens:
                raise Refused(503, "Inbox unavailable", "Start charter serve with --tokens to use the inbox.")
            self.check_origin(request)
            form = await self.form(request)
        except Refused as exc:
            return html(pages.message_page(exc.title, exc.text, None), exc.status)
        token = form.get("token", "").strip()
        p = self.sidecar.tokens.lookup(token) if token else None
        if p is None:
            self.rt.metrics.reject(401)
            return html(pages.sign_in(error="Unknown token."), 401)
        digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        _, cookie = await self.sidecar.call(lambda: self.sessions.issue(p.name, digest), inline=False)
        resp = see_other(url())
        resp.set_cookie(COOKIE, cookie, max_age=int(self.settings.session_s), **self._cookie(request))
        return resp

    async def logout(self, request: Request, viewer: Viewer, p: Principal, form: dict[str, str]) -> Response:
        s: Session = request.state.session
        await self.sidecar.call(lambda: self.sessions.sign_out(s), inline=False)
        resp = see_other(url("login", done="signed-out"))
        resp.delete_cookie(COOKIE, **self._cookie(request))
        return resp

    async def home(self, request: Request, viewer: Viewer, p: Principal, form: dict[str, str]) -> Response:
        for key, perm in (("approvals", "read-humans"), ("stops", "read-stops"), ("runs", "read")):
            if viewer.may.get(perm):
                return see_other(url(key))
        return html(pages.message_page("Nothing to show", "Your role has no page in the inbox.", viewer), 403)

    # ---- approvals ---------------------------------------------------------------------------
    def _status(self, request: Request, tabs: tuple[str, ...], default: str) -> str:
        status = request.query_params.get("status") or default
        if status not in tabs:
            raise Refused(404, "Not found", f"No such filter; use one of {', '.join(tabs)}.")
        return status

    def _listing(self, kind: str, tabs: tuple[str, ...], default: str, render: Any) -> Any:
        """The handler of a list page (approvals, escalations) filtered by status."""

        async def handler(request: Request, viewer: Viewer, p: Principal, form: dict[str, str]) -> Response:
            status = self._status(request, tabs, default)
            service = getattr(self.rt.engine, kind)
            docs = await self.call(lambda: service.list(None if status == "all" else status))
            counts = {kind: len(docs)} if status == default else {}
            return html(render(docs, status, time.time(), viewer, counts))

        return handler

    def _context(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        """The trace's view of the request: the deciding record's boundaries, the run before it."""
        trace = self.rt.trace
        if trace is None:
            return None
        from charter.trace.log import get, query

        trace.flush(5.0)
        rec, _ = get(trace.path, str(doc.get("decision_id")))
        action = doc.get("action") or {}
        earlier: list[dict[str, Any]] = []
        if action.get("run"):
            at = float(rec["at"]) if rec else float(doc.get("created_at") or 0)
            for r in query(trace.path, agent=action.get("agent"), limit=500):
                ctx = (r.get("request") or {}).get("context") or {}
                if ctx.get("run") == action["run"] and float(r.get("at", 0)) < at:
                    earlier.append(r)
            earlier.reverse()
        # A gated action reserves nothing until it comes back approved, so its own record may check
        # no budget: then show the budgets as the run's latest decision that checked them saw them.
        source = rec
        if not (rec or {}).get("boundaries"):
            source = next((r for r in reversed(earlier) if r.get("boundaries")), rec)
        return {
            "boundaries": (source or {}).get("boundaries", []),
            "as_of": None if source is rec else source,
            "earlier": earlier[-20:],
        }

    async def approval(
        self,
        request: Request,
        viewer: Viewer,
        p: Principal,
        form: dict[str, str],
        status: int = 200,
        error: str | None = None,
    ) -> Response:
        aid = request.path_params["approval_id"]
        engine = self.rt.engine
        doc = await self.call(lambda: engine.approvals.get(aid))
        context = await self.sidecar.call(lambda: self._context(doc), inline=False)
        refusal = engine.approvals.refusal(doc, p.name) if p.may("answer") else None
        reasons = {r.id: r.reason for r in engine.policy.rules}
        done = request.query_params.get("done") if status == 200 else None
        page = pages.approval_page(
            doc, reasons, context, viewer, str(refusal) if refusal else None, time.time(), {}, done, error
        )
        return html(page, status)

    def _answering(self, verb: str) -> Callable[..., Awaitable[Response]]:
        async def handler(request: Request, viewer: Viewer, p: Principal, form: dict[str, str]) -> Response:
            aid = request.path_params["approval_id"]
            note = form.get("note", "")[:4096]
            approvals = self.rt.engine.approvals
            fn = approvals.approve if verb == "approve" else approvals.deny
            try:
                await self.call(lambda: fn(aid, p.name, note, via=Channel.INBOX))
            except Refused as exc:
                if exc.status == 404:
                    raise
                return await self.approval(request, viewer, p, form, exc.status, exc.text)
            return see_other(url("approvals", aid, done=verb))

        return handler

    # ---- escalations -------------------------------------------------------------------------
    async def escalation(
        self,
        request: Request,
        viewer: Viewer,
        p: Principal,
        form: dict[str, str],
        status: int = 200,
        error: str | None = None,
    ) -> Response:
        eid = request.path_params["escalation_id"]
        esc = self.rt.engine.escalations
        doc = await self.call(lambda: esc.get(eid))
        now = time.time()
        step = current_step(doc, now) if doc.get("status") == "open" else None
        may = bool(p.may("answer") and esc.may_answer(doc, p.name))
        done = request.query_params.get("done") if status == 200 else None
        return html(pages.escalation_page(doc, step, may, viewer, now, {}, done, error), status)

    async def answer(self, request: Request, viewer: Viewer, p: Principal, form: dict[str, str]) -> Response:
        eid = request.path_params["escalation_id"]
        verdict = form.get("verdict", "")
        if verdict not in ("allow", "deny"):
            raise Refused(400, "Refused", "Answer allow or deny.")
        note = form.get("note", "")[:4096]
        esc = self.rt.engine.escalations
        try:
            await self.call(lambda: esc.answer(eid, p.name, verdict, note, via=Channel.INBOX))
        except Refused as exc:
            if exc.status == 404:
                raise
            return await self.escalation(request, viewer, p, form, exc.status, exc.text)
        return see_other(url("escalations", eid, done="allow" if verdict == "allow" else "refuse"))

    # ---- stops -------------------------------------------------------------------------------
    async def stops(
        self,
        request: Request,
        viewer: Viewer,
        p: Principal,
        form: dict[str, str],
        status: int = 200,
        error: str | None = None,
    ) -> Response:
        stops = self.rt.engine.stops

        def gather() -> tuple[Any, ...]:
            active = stops.list()
            log_ = stops.log()
            requests = {(s.scope, s.value): stops.resume_requests(s.scope, s.value) for s in active}
            set_by: dict[tuple[str, str], dict[str, Any]] = {}
            for e in log_:
                if e.get("event") == "stopped":
                    set_by[(e["scope"], e["value"])] = e
            return active, requests, set_by, log_

        active, requests, set_by, log_ = await self.call(gather)
        done = request.query_params.get("done") if status == 200 else None
        counts = {"stops": len(active)}
        page = pages.stops_page(
            active, requests, set_by, log_, stops.resume_requires, viewer, counts, done, error
        )
        return html(page, status)

    async def stop(self, request: Request, viewer: Viewer, p: Principal, form: dict[str, str]) -> Response:
        scope, value, reason = form.get("scope", ""), form.get("value", "").strip(), form.get("reason", "")
        if scope == "global":
            value = "*"
        if len(value) > 256 or len(reason) > 4096:
            raise Refused(413, "Too large", "The value or reason is too long.")
        stops = self.rt.engine.stops
        try:
            await self.call(lambda: stops.stop(scope, value, reason, p.name, via=Channel.INBOX))
        except Refused as exc:
            return await self.stops(request, viewer, p, form, exc.status, exc.text)
        log.warning("stop %s=%s by %s (inbox)", scope, value, p.name)
        return see_other(url("stops", done="stop"))

    async def resume(self, request: Request, viewer: Viewer, p: Principal, form: dict[str, str]) -> Response:
        scope, value, reason = form.get("scope", ""), form.get("value", ""), form.get("reason", "")[:4096]
        stops = self.rt.engine.stops
        try:
            await self.call(lambda: stops.resume(scope, value, p.name, reason, via=Channel.INBOX))
        except Refused as exc:
            return await self.stops(request, viewer, p, form, exc.status, exc.text)
        return see_other(url("stops", done="resume"))

    # ---- runs and decisions --------------------------------------------------------------------
    async def runs(self, request: Request, viewer: Viewer, p: Principal, form: dict[str, str]) -> Response:
        run = request.query_params.get("run")
        agent = request.query_params.get("agent")
        if run:
            return see_other(url("runs", run, agent=agent))
        return html(pages.runs_page(run, agent, viewer, {}))

    async def timeline(
        self, request: Request, viewer: Viewer, p: Principal, form: dict[str, str]
    ) -> Response:
        run = request.path_params["run"]
        agent = request.query_params.get("agent") or None
        trace = self.rt.trace
        if trace is None:
            return html(pages.timeline_page(run, [], {}, viewer, {}, traced=False))
        from charter.trace.log import query
        from charter.trace.story import story

        def gather() -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
            trace.flush(5.0)
            found = [
                r
                for r in query(trace.path, agent=agent, limit=2000 if agent else 5000)
                if ((r.get("request") or {}).get("context") or {}).get("run") == run
            ]
            found.reverse()
            found = found[-200:]
            return found, {str(r["id"]): story(trace.path, str(r["id"]))[1] for r in found}

        records, stories = await self.sidecar.call(gather, inline=False)
        return html(pages.timeline_page(run, records, stories, viewer, {}, traced=True))

    async def decision(
        self, request: Request, viewer: Viewer, p: Principal, form: dict[str, str]
    ) -> Response:
        did = request.path_params["decision_id"]
        trace = self.rt.trace
        if trace is None:
            raise Refused(404, "Not found", "This sidecar keeps no trace (start it with --trace).")
        from charter.trace.story import story

        def read() -> tuple[Any, list[str]]:
            trace.flush(5.0)
            return story(trace.path, did)

        rec, lines = await self.sidecar.call(read, inline=False)
        if rec is None:
            raise Refused(404, "Not found", f"No traced decision {did}.")
        return html(pages.decision_page(rec, lines, viewer, {}))

    # ---- live updates ------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """A digest of every approval's and escalation's state and the active stops (the slow check;
        reading also moves escalations up their chains and times out approvals)."""
        engine = self.rt.engine
        parts = [
            (d["id"], d["status"], len(d.get("history") or []))
            for d in (*engine.approvals.list(), *engine.escalations.list())
        ]
        stops = [(s.scope, s.value, s.at) for s in engine.stops.list()]
        return hashlib.sha256(repr((sorted(parts), sorted(stops))).encode()).hexdigest()[:12]

    async def events(self, request: Request, viewer: Viewer, p: Principal, form: dict[str, str]) -> Response:
        if self.changes is None:
            self.changes = Changes(self)
        changes = self.changes
        changes.start()
        expires = request.state.session.expires

        async def stream() -> AsyncIterator[str]:
            changes.listeners += 1
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changes.ready.wait(), 10.0)
                seen = changes.version
                yield f"retry: 1000\nevent: change\ndata: {json.dumps(seen)}\n\n"
                ends = time.monotonic() + STREAM_S
                while time.monotonic() < ends and time.time() < expires:
                    now_seen = await changes.wait(seen, 15.0)
                    if now_seen != seen:
                        seen = now_seen
                        yield f"event: change\ndata: {json.dumps(seen)}\n\n"
                    else:
                        yield ": keep-alive\n\n"
            finally:
                changes.listeners -= 1

        headers = {**_SECURITY_HEADERS, "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        found = assets.FILES.get(name)
        if found is None:
            return Response("not found", 404, media_type="text/plain")
        body, media = found
        headers = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
        return Response(body, media_type=media, headers=headers)

    # ---- the routes --------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        """Every /ui route with the permission it needs (None: any signed-in person)."""
        g, P = self.page, PREFIX
        return [
            Route(P, g(None, self.home), methods=["GET"]),
            Route(P + "/", g(None, self.home), methods=["GET"]),
            Route(P + "/static/{name}", self.asset, methods=["GET"]),
            Route(P + "/login", self.login_form, methods=["GET"]),
            Route(P + "/login", self.login, methods=["POST"]),
            Route(P + "/logout", g(None, self.logout, post=True), methods=["POST"]),
            Route(P + "/events", g(None, self.events), methods=["GET"]),
            Route(
                P + "/approvals",
                g(
                    "read-humans",
                    self._listing("approvals", pages.APPROVAL_TABS, "pending", pages.approvals_list),
                ),
                methods=["GET"],
            ),
            Route(P + "/approvals/{approval_id}", g("read-humans", self.approval), methods=["GET"]),
            Route(
                P + "/approvals/{approval_id}/approve",
                g("answer", self._answering("approve"), post=True),
                methods=["POST"],
            ),
            Route(
                P + "/approvals/{approval_id}/deny",
                g("answer", self._answering("deny"), post=True),
                methods=["POST"],
            ),
            Route(
                P + "/escalations",
                g(
                    "read-humans",
                    self._listing("escalations", pages.ESCALATION_TABS, "open", pages.escalations_list),
                ),
                methods=["GET"],
            ),
            Route(P + "/escalations/{escalation_id}", g("read-humans", self.escalation), methods=["GET"]),
            Route(
                P + "/escalations/{escalation_id}/answer",
                g("answer", self.answer, post=True),
                methods=["POST"],
            ),
            Route(P + "/stops", g("read-stops", self.stops), methods=["GET"]),
            Route(P + "/stops", g("stop", self.stop, post=True), methods=["POST"]),
            Route(P + "/stops/resume", g("stop", self.resume, post=True), methods=["POST"]),
            Route(P + "/runs", g("read", self.runs), methods=["GET"]),
            Route(P + "/runs/{run}", g("read", self.timeline), methods=["GET"]),
            Route(P + "/decisions/{decision_id}", g("read", self.decision), methods=["GET"]),
        ]
