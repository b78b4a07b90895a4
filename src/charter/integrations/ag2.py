"""AG2 (the ``ag2`` package): tool middleware that decides every tool call with charter."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from charter.enums import Outcome
from charter.extras import missing_extra
from charter.hits import decision_reasons
from charter.integrations._aio import adecide, asettle
from charter.integrations.requests import tool_call_request

try:  # the framework itself: without it the adapter cannot work, and says which extra to install
    import ag2  # noqa: F401
except ImportError as _exc:
    raise missing_extra("ag2", "the AG2 adapter", _exc) from _exc

__all__ = ["CharterToolMiddleware", "charter_middleware"]


class CharterToolMiddleware:
    """An AG2 tool middleware: ``@tool(middleware=[CharterToolMiddleware(backend, "agent-id")])``,
    or for every tool of an agent, ``Agent(..., middleware=[charter_middleware(backend, ...)])``.

    Each call is decided before it runs (``backend``: an Engine or a
    :class:`charter.client.AsyncClient`; never a blocking call in the event loop). A refused
    call does not run: the model gets charter's reasons as the tool's result. A call needing
    approval gets the approval id; once the approval has its quorum, the same call (same tool,
    same arguments) is resubmitted with it and runs. Allowed calls are settled (success, or
    failure when the tool raised) when they hold budget or the context names a run.
    """

    def __init__(self, backend: Any, actor: str | None = None, context: Mapping[str, Any] | None = None):
        self.backend = backend
        self.actor = actor
        self.context = dict(context or {})
        #: (tool, arguments) -> the approval opened for that call
        self._approvals: dict[tuple[str, str], str] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> CharterToolMiddleware:
        # AG2 deep-copies a tool (and its middleware) into each agent; the guard, its backend
        # (engine locks, client connections) and its open approvals are shared, not copied
        return self

    def request(self, actor: str, tool: str, args: Mapping[str, Any], approval: str | None) -> dict[str, Any]:
        """The decision request for one tool call."""
        return tool_call_request(actor, tool, args, self.context, approval)

    async def __call__(self, call_next: Any, event: Any, context: Any) -> Any:
        from ag2.events import ToolErrorEvent, ToolResultEvent

        try:
            args = json.loads(event.arguments or "{}")
        except ValueError:
            return ToolResultEvent.from_call(event, result="charter: the tool arguments are not JSON; denied")
        if not isinstance(args, dict):
            return ToolResultEvent.from_call(
                event, result="charter: the tool arguments are not an object; denied"
            )
        actor = self.actor or "agent"
        key = (str(event.name), json.dumps(args, sort_keys=True, default=str))
        try:
            d = await adecide(self.backend, self.request(actor, event.name, args, self._approvals.get(key)))
        except Exception as exc:  # fail closed: the tool does not run
            return ToolResultEvent.from_call(
                event, result=f"charter could not decide ({type(exc).__name__}); denied"
            )
        if d.outcome is Outcome.REQUIRE_APPROVAL and d.obligations.get("approval_id"):
            aid = self._approvals[key] = str(d.obligations["approval_id"])
            return ToolResultEvent.from_call(
                event,
                result=f"charter: this call needs human approval ({decision_reasons(d)}); approval {aid} is "
                "pending. Call the tool again with the same arguments once it is approved.",
            )
        if d.outcome is not Outcome.ALLOW:
            return ToolResultEvent.from_call(
                event, result=f"charter: {d.outcome.value}: {decision_reasons(d)}"
            )
        self._approvals.pop(key, None)
        result = await call_next(event, context)
        if d.hold_id or self.context.get("run"):
            failed = isinstance(result, ToolErrorEvent)
            # the tool ran: a settlement problem is traced, not raised into the agent
            with contextlib.suppress(Exception):
                await asettle(self.backend, d.id, outcome="failure" if failed else "success")
        return result


def charter_middleware(
    backend: Any, actor: str | None = None, context: Mapping[str, Any] | None = None
) -> Any:
    """Agent-level middleware: every tool call of the agent goes through charter
    (``Agent("name", config=..., middleware=[charter_middleware(engine, "name")])``)."""
    from ag2 import Middleware
    from ag2.middleware import BaseMiddleware

    hook = CharterToolMiddleware(backend, actor, context)

    class _Charter(BaseMiddleware):
        async def on_tool_execution(self, call_next: Any, event: Any, context: Any) -> Any:
            return await hook(call_next, event, context)

    return Middleware(_Charter)
