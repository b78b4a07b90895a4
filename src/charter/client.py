"""A client for the sidecar with the in-process engine's methods; it fails closed, never open."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit

from charter.engine.decision import BoundaryCheck, Decision, Failure, GrantedDecision, RuleHit
from charter.engine.engine import Settlement
from charter.engine.grants import Grant, GrantError, GrantProblem, Run
from charter.engine.request import Request
from charter.enums import HitKind, Outcome
from charter.errors import Error
from charter.state.types import StopRecord

__all__ = ["AsyncClient", "Client", "SidecarError", "TransportError"]


class SidecarError(Error):
    """The sidecar refused the request; ``status``, ``code`` and ``field`` say how and why."""

    def __init__(self, status: int, message: str, code: str = "", field: str | None = None):
        super().__init__(f"{status} {code}: {message}" if code else f"{status}: {message}")
        self.status, self.code, self.field, self.message = status, code, field, message


class TransportError(SidecarError):
    """The sidecar could not be reached or did not answer in time (the action is not allowed)."""

    def __init__(self, message: str):
        super().__init__(0, message, "transport")


_hit = RuleHit.from_dict


def decision_from_dict(d: Mapping[str, Any]) -> Decision:
    """A :class:`charter.Decision` from its wire form (``to_dict()`` gives the same data back)."""
    dec = Decision(
        d["id"],
        Outcome(d["outcome"]),
        tuple(_hit(r) for r in d.get("rules", ())),
        d["revision"],
        tuple(BoundaryCheck(**b) for b in d.get("boundaries", ())),
        tuple(_hit(r) for r in d.get("shadow", ())),
        tuple(Failure(**f) for f in d.get("failures", ())),
        dict(d.get("obligations") or {}),
        float(d.get("elapsed_us", 0.0)),
        bool(d.get("default_deny", False)),
        d.get("hold_id"),
        bool(d.get("replayed", False)),
        {k: [(t, v) for t, v in vals] for k, vals in (d.get("evidence") or {}).items()},
    )
    grants = d.get("grants")
    if grants:
        return GrantedDecision.of(dec, tuple(dict(g) for g in grants))
    return dec


def run_from_dict(d: Mapping[str, Any]) -> Run:
    """A :class:`charter.engine.grants.Run` from its wire form."""
    grants = tuple(
        Grant(str(g["id"]), str(g["kind"]), g.get("uses_left"), dict(g.get("params") or {}))
        for g in d.get("grants", ())
    )
    return Run(str(d["run"]), str(d.get("actor", "")), grants, str(d.get("revision", "")))


def _run_body(run: str, actor: str, grants: Any, labels: Any) -> dict[str, Any]:
    return {"run": run, "actor": actor, "grants": [dict(g) for g in grants], "labels": list(labels)}


def _run_path(run: str, rest: str = "") -> str:
    """The sidecar path of a run (its id percent-encoded whole: ``/`` and ``..`` stay inside it)."""
    return f"/v1/runs/{quote(run, safe='')}{rest}"


def _narrow_body(revoke: Any, uses: Mapping[str, int] | None) -> dict[str, Any]:
    return {"revoke": list(revoke), "uses": dict(uses or {})}


def _import_body(actor: str, events: list[Mapping[str, Any]], charge: bool) -> dict[str, Any]:
    return {"actor": actor, "events": [dict(e) for e in events], "charge": charge}


def _settle_body(
    decision_id: str,
    actual_cost: Mapping[str, float] | float | None,
    outcome: str,
    labels: tuple[str, ...] | list[str],
    result: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The ``/v1/settle`` body, for both clients."""
    cost = dict(actual_cost) if isinstance(actual_cost, Mapping) else actual_cost
    body: dict[str, Any] = {
        "decision_id": decision_id,
        "actual_cost": cost,
        "outcome": outcome,
        "labels": list(labels),
    }
    if result is not None:  # only when given: a sidecar before 'result' refuses the key
        body["result"] = dict(result)
    return body


def settlement_from_dict(d: Mapping[str, Any]) -> Settlement:
    """A :class:`charter.Settlement` from its wire form."""
    return Settlement(
        d["decision_id"],
        bool(d["committed"]),
        d.get("result", "success"),
        [_hit(r) for r in d.get("checks", ())],
        Outcome(d["outcome"]) if d.get("outcome") else None,
        tuple(d.get("labels", ())),
        [StopRecord(**s) for s in d.get("stops", ())],
        [BoundaryCheck(**b) for b in d.get("boundaries", ())],
        [Failure(**f) for f in d.get("failures", ())],
    )


class Client:
    """Talks to `charter serve` over HTTP/1.1 keep-alive (one connection per thread).

    ``decide`` returns a :class:`charter.Decision`. Every refusal raises :class:`SidecarError`;
    an unreachable or slow sidecar raises :class:`TransportError` (or, with
    ``on_transport_error="deny"``, returns a ``deny`` decision recording the failure).
    Nothing here ever turns an error into ``allow``.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8181",
        token: str | None = None,
        *,
        timeout: float = 5.0,
        on_transport_error: str = "raise",
        headers: Mapping[str, str] | None = None,
    ):
        parts = _checked_settings(url, on_transport_error)
        self.url = url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self.timeout = timeout
        self.on_transport_error = on_transport_error
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        self._headers.update(headers or {})  # e.g. the command line's X-Charter-Client
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._local = threading.local()
        self.approvals = _Approvals(self)
        self.escalations = _Escalations(self)
        self.stops = _Stops(self)

    def __repr__(self) -> str:  # never shows the token
        return f"Client({self.url!r})"

    # ---- transport -----------------------------------------------------------------------------
    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; the decoded JSON answer, or an exception."""
        payload = None if body is None else json.dumps(body, default=_jsonable).encode("utf-8")
        for attempt in (0, 1):
            conn = self._conn()
            reused = getattr(conn, "sock", None) is not None
            try:
                conn.request(method, self._base + path, payload, self._headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop()
                # A kept-alive connection closed by the server before it read anything: retry once.
                if attempt == 0 and reused:
                    continue
                raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                self._drop()
                raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if resp.will_close:
            self._drop()
        return _answer(resp.status, raw)

    def close(self) -> None:
        """Close this thread's connection."""
        self._drop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the engine's methods ------------------------------------------------------------------
    def decide(self, request: Request | Mapping[str, Any]) -> Decision:
        """Decide one action on the sidecar."""
        body = request.model_dump(mode="json", exclude_none=True) if isinstance(request, Request) else request
        try:
            data = self.request("POST", "/v1/decide", body)
        except TransportError as exc:
            if self.on_transport_error == "deny":
                return _unreachable(exc)
            raise
        if not isinstance(data, Mapping) or "outcome" not in data:
            raise SidecarError(200, "the sidecar's answer is not a decision")
        return decision_from_dict(data)

    def settle(
        self,
        decision_id: str,
        actual_cost: Mapping[str, float] | float | None = None,
        outcome: str = "success",
        labels: tuple[str, ...] | list[str] = (),
        result: Mapping[str, Any] | None = None,
    ) -> Settlement:
        """Settle a decision (on the replica that made it); ``result``: see :meth:`charter.Engine.settle`."""
        body = _settle_body(decision_id, actual_cost, outcome, labels, result)
        return settlement_from_dict(self.request("POST", "/v1/settle", body))

    def begin_run(self, run: str, *, actor: str = "", grants: Any = (), labels: Any = ()) -> Run:
        """Declare a run's grants before it does anything (raises GrantError when refused)."""
        return run_from_dict(self.request("POST", "/v1/runs", _run_body(run, actor, grants, labels)))

    def narrow_run(self, run: str, *, revoke: Any = (), uses: Mapping[str, int] | None = None) -> Run:
        """Revoke grants of a run or lower their uses (never widens)."""
        return run_from_dict(self.request("POST", _run_path(run, "/narrow"), _narrow_body(revoke, uses)))

    def import_run(
        self, run: str, *, actor: str, events: list[Mapping[str, Any]], charge: bool = False
    ) -> dict[str, Any]:
        """Seed a run's history (see :meth:`charter.Engine.import_run`); a malformed import is
        SidecarError 400 and writes nothing."""
        return dict(self.request("POST", _run_path(run, "/history"), _import_body(actor, events, charge)))

    def export_run(self, run: str) -> dict[str, Any]:
        """A run's steps, labels and history (see :meth:`charter.Engine.export_run`); a run the
        sidecar's store has nothing of is SidecarError 404 ``unknown-run``."""
        return dict(self.request("GET", _run_path(run)))

    def explain(self, decision_id: str) -> dict[str, Any]:
        """The traced record of a decision and its explanation in plain words."""
        return dict(self.request("GET", f"/v1/decisions/{quote(decision_id, safe='')}"))

    def ready(self) -> dict[str, Any]:
        """The readiness report (raises SidecarError 503 when not ready)."""
        return dict(self.request("GET", "/readyz"))


def _checked_settings(url: str, on_transport_error: str) -> SplitResult:
    """The sidecar URL split, after refusing what neither client can use (both clients' settings)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"sidecar URL must be http:// or https://, not {url!r}")
    if on_transport_error not in ("raise", "deny"):
        raise ValueError("on_transport_error is 'raise' or 'deny'")
    return parts


def _unreachable(exc: Exception) -> Decision:
    """The ``deny`` decision of ``on_transport_error="deny"``: records why nothing was decided."""
    return Decision(
        "d-unreachable",
        Outcome.DENY,
        (
            RuleHit(
                "charter.fail-closed",
                HitKind.FAILURE,
                Outcome.DENY,
                "The sidecar could not be reached, so the action is denied (fail closed).",
            ),
        ),
        "",
        failures=(Failure("sidecar", str(exc), "deny"),),
    )


def _answer(status: int, raw: bytes) -> Any:
    """The decoded JSON answer of the sidecar, or the SidecarError it stands for."""
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = None
    if status >= 300:
        if isinstance(data, Mapping) and isinstance(data.get("diagnostics"), list):
            # a refused begin_run: the same GrantError the engine raises in process
            raise GrantError(
                [
                    GrantProblem(
                        str(p.get("code", "")),
                        str(p.get("name", "")),
                        str(p.get("message", "")),
                        p.get("index"),
                        str(p.get("help") or ""),
                    )
                    for p in data["diagnostics"]
                    if isinstance(p, Mapping)
                ]
            )
        if isinstance(data, Mapping):
            raise SidecarError(
                status, str(data.get("error", "")), str(data.get("code", "")), data.get("field")
            )
        raise SidecarError(status, raw[:200].decode("utf-8", "replace"))
    if data is None and raw:
        raise SidecarError(status, "the sidecar answered with something that is not JSON")
    return data


class AsyncClient:
    """The async twin of :class:`Client` (httpx, one pooled connection set per client): the same
    methods, awaited, and the same fail-closed rules. For async frameworks (OpenAI Agents SDK
    guardrails, AG2 middleware), where the sync client would block the event loop.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8181",
        token: str | None = None,
        *,
        timeout: float = 5.0,
        on_transport_error: str = "raise",
        headers: Mapping[str, str] | None = None,
    ):
        import httpx

        _checked_settings(url, on_transport_error)
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.on_transport_error = on_transport_error
        hdrs = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(base_url=self.url, headers=hdrs, timeout=timeout)
        self._httpx = httpx
        self.approvals = _AsyncApprovals(self)
        self.escalations = _AsyncEscalations(self)
        self.stops = _AsyncStops(self)

    def __repr__(self) -> str:  # never shows the token
        return f"AsyncClient({self.url!r})"

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; the decoded JSON answer, or an exception."""
        payload = None if body is None else json.dumps(body, default=_jsonable).encode("utf-8")
        try:
            resp = await self._http.request(method, path, content=payload)
        except self._httpx.HTTPError as exc:
            raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        return _answer(resp.status_code, resp.content)

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def decide(self, request: Request | Mapping[str, Any]) -> Decision:
        """Decide one action on the sidecar."""
        body = request.model_dump(mode="json", exclude_none=True) if isinstance(request, Request) else request
        try:
            data = await self.request("POST", "/v1/decide", body)
        except TransportError as exc:
            if self.on_transport_error == "deny":
                return _unreachable(exc)
            raise
        if not isinstance(data, Mapping) or "outcome" not in data:
            raise SidecarError(200, "the sidecar's answer is not a decision")
        return decision_from_dict(data)

    async def settle(
        self,
        decision_id: str,
        actual_cost: Mapping[str, float] | float | None = None,
        outcome: str = "success",
        labels: tuple[str, ...] | list[str] = (),
        result: Mapping[str, Any] | None = None,
    ) -> Settlement:
        """Settle a decision (on the replica that made it); ``result``: see :meth:`charter.Engine.settle`."""
        body = _settle_body(decision_id, actual_cost, outcome, labels, result)
        return settlement_from_dict(await self.request("POST", "/v1/settle", body))

    async def begin_run(self, run: str, *, actor: str = "", grants: Any = (), labels: Any = ()) -> Run:
        """Declare a run's grants before it does anything (raises GrantError when refused)."""
        return run_from_dict(await self.request("POST", "/v1/runs", _run_body(run, actor, grants, labels)))

    async def narrow_run(self, run: str, *, revoke: Any = (), uses: Mapping[str, int] | None = None) -> Run:
        """Revoke grants of a run or lower their uses (never widens)."""
        return run_from_dict(
            await self.request("POST", _run_path(run, "/narrow"), _narrow_body(revoke, uses))
        )

    async def import_run(
        self, run: str, *, actor: str, events: list[Mapping[str, Any]], charge: bool = False
    ) -> dict[str, Any]:
        """Seed a run's history (see :meth:`charter.Engine.import_run`); a malformed import is
        SidecarError 400 and writes nothing."""
        return dict(
            await self.request("POST", _run_path(run, "/history"), _import_body(actor, events, charge))
        )

    async def export_run(self, run: str) -> dict[str, Any]:
        """A run's steps, labels and history (see :meth:`charter.Engine.export_run`); a run the
        sidecar's store has nothing of is SidecarError 404 ``unknown-run``."""
        return dict(await self.request("GET", _run_path(run)))

    async def explain(self, decision_id: str) -> dict[str, Any]:
        """The traced record of a decision and its explanation in plain words."""
        return dict(await self.request("GET", f"/v1/decisions/{quote(decision_id, safe='')}"))

    async def ready(self) -> dict[str, Any]:
        """The readiness report (raises SidecarError 503 when not ready)."""
        return dict(await self.request("GET", "/readyz"))


class _AsyncApprovals:
    """``client.approvals`` of the async client."""

    def __init__(self, c: AsyncClient):
        self._c = c

    async def list(self, status: str | None = None) -> list[dict[str, Any]]:
        q = f"?status={quote(status)}" if status else ""
        return list((await self._c.request("GET", f"/v1/approvals{q}"))["items"])

    async def get(self, approval_id: str) -> dict[str, Any]:
        return dict(await self._c.request("GET", f"/v1/approvals/{quote(approval_id, safe='')}"))

    async def approve(self, approval_id: str, who: str | None = None, note: str = "") -> dict[str, Any]:
        path = f"/v1/approvals/{quote(approval_id, safe='')}/approve"
        return dict(await self._c.request("POST", path, {"note": note}))

    async def deny(self, approval_id: str, who: str | None = None, note: str = "") -> dict[str, Any]:
        path = f"/v1/approvals/{quote(approval_id, safe='')}/deny"
        return dict(await self._c.request("POST", path, {"note": note}))


class _AsyncEscalations:
    """``client.escalations`` of the async client."""

    def __init__(self, c: AsyncClient):
        self._c = c

    async def list(self, status: str | None = None) -> list[dict[str, Any]]:
        q = f"?status={quote(status)}" if status else ""
        return list((await self._c.request("GET", f"/v1/escalations{q}"))["items"])

    async def get(self, escalation_id: str) -> dict[str, Any]:
        return dict(await self._c.request("GET", f"/v1/escalations/{quote(escalation_id, safe='')}"))

    async def answer(
        self, escalation_id: str, who: str | None = None, verdict: str = "deny", note: str = ""
    ) -> dict[str, Any]:
        path = f"/v1/escalations/{quote(escalation_id, safe='')}/answer"
        return dict(await self._c.request("POST", path, {"verdict": verdict, "note": note}))


class _AsyncStops:
    """``client.stops`` of the async client."""

    def __init__(self, c: AsyncClient):
        self._c = c

    async def stop(
        self, scope: str, value: str = "*", reason: str = "", who: str | None = None
    ) -> StopRecord:
        d = await self._c.request("POST", "/v1/stops", {"scope": scope, "value": value, "reason": reason})
        return StopRecord(**d)

    async def resume(
        self, scope: str, value: str = "*", who: str | None = None, reason: str = ""
    ) -> dict[str, Any]:
        body = {"scope": scope, "value": value, "reason": reason}
        return dict(await self._c.request("POST", "/v1/stops/resume", body))

    async def list(self) -> list[StopRecord]:
        return [StopRecord(**s) for s in (await self._c.request("GET", "/v1/stops"))["items"]]


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


class _Approvals:
    """``client.approvals``: list, get, approve, deny (the approver is the token's name)."""

    def __init__(self, c: Client):
        self._c = c

    def list(self, status: str | None = None) -> list[dict[str, Any]]:
        q = f"?status={quote(status)}" if status else ""
        return list(self._c.request("GET", f"/v1/approvals{q}")["items"])

    def get(self, approval_id: str) -> dict[str, Any]:
        return dict(self._c.request("GET", f"/v1/approvals/{quote(approval_id, safe='')}"))

    def approve(self, approval_id: str, who: str | None = None, note: str = "") -> dict[str, Any]:
        """Approve; ``who`` is accepted for signature compatibility but the token decides who."""
        return dict(
            self._c.request("POST", f"/v1/approvals/{quote(approval_id, safe='')}/approve", {"note": note})
        )

    def deny(self, approval_id: str, who: str | None = None, note: str = "") -> dict[str, Any]:
        """Deny; the token decides who."""
        return dict(
            self._c.request("POST", f"/v1/approvals/{quote(approval_id, safe='')}/deny", {"note": note})
        )


class _Escalations:
    """``client.escalations``: list, get, answer (the answerer is the token's name)."""

    def __init__(self, c: Client):
        self._c = c

    def list(self, status: str | None = None) -> list[dict[str, Any]]:
        q = f"?status={quote(status)}" if status else ""
        return list(self._c.request("GET", f"/v1/escalations{q}")["items"])

    def get(self, escalation_id: str) -> dict[str, Any]:
        return dict(self._c.request("GET", f"/v1/escalations/{quote(escalation_id, safe='')}"))

    def answer(
        self, escalation_id: str, who: str | None = None, verdict: str = "deny", note: str = ""
    ) -> dict[str, Any]:
        """Answer allow or deny; the token decides who."""
        return dict(
            self._c.request(
                "POST",
                f"/v1/escalations/{quote(escalation_id, safe='')}/answer",
                {"verdict": verdict, "note": note},
            )
        )


class _Stops:
    """``client.stops``: stop, resume, list (the operator is the token's name)."""

    def __init__(self, c: Client):
        self._c = c

    def stop(self, scope: str, value: str = "*", reason: str = "", who: str | None = None) -> StopRecord:
        d = self._c.request("POST", "/v1/stops", {"scope": scope, "value": value, "reason": reason})
        return StopRecord(**d)

    def resume(
        self, scope: str, value: str = "*", who: str | None = None, reason: str = ""
    ) -> dict[str, Any]:
        return dict(
            self._c.request("POST", "/v1/stops/resume", {"scope": scope, "value": value, "reason": reason})
        )

    def list(self) -> list[StopRecord]:
        return [StopRecord(**s) for s in self._c.request("GET", "/v1/stops")["items"]]
