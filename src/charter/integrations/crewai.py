"""CrewAI: before/after tool-call hooks that decide every tool call with charter and settle it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

from charter.engine.decision import Decision
from charter.enums import Outcome
from charter.extras import missing_extra
from charter.hits import decision_reasons
from charter.integrations.requests import tool_call_request

try:  # the framework itself: without it the adapter cannot work, and says which extra to install
    import crewai  # noqa: F401
except ImportError as _exc:
    raise missing_extra("crewai", "the CrewAI adapter", _exc) from _exc

__all__ = ["CharterHooks"]


class CharterHooks:
    """CrewAI tool hooks (``crewai.hooks``): ``CharterHooks(engine).register()``.

    * before a tool call: decided; anything but allow blocks the call (the tool does not run)
      and the model is given charter's reasons instead of CrewAI's generic "blocked" text.
      A call needing approval gets the approval id; once approved, the same call (same tool,
      same input) is resubmitted with it.
    * after the call: the allowed decision is settled (budgets commit; ``on result`` rules run).

    ``backend`` is an Engine or a sync :class:`charter.client.Client` (CrewAI's hooks are
    synchronous). The actor is ``actor`` or the CrewAI agent's ``role``; ``target`` maps a
    CrewAI tool name to the policy's tool name (default: unchanged).
    """

    def __init__(
        self,
        backend: Any,
        actor: str | None = None,
        *,
        context: Mapping[str, Any] | None = None,
        target: Callable[[str], str] | None = None,
    ):
        self.backend = backend
        self.actor = actor
        self.context = dict(context or {})
        self.target = target or (lambda name: name)
        self._lock = threading.Lock()
        #: the tool input dict of a call in flight (CrewAI hands the same dict to both hooks)
        self._calls: dict[int, tuple[Decision | None, str]] = {}
        self._approvals: dict[tuple[str, str], str] = {}

    def _actor(self, ctx: Any) -> str:
        if self.actor:
            return self.actor
        agent = getattr(ctx, "agent", None)
        return str(getattr(agent, "role", None) or getattr(agent, "name", None) or "agent")

    def before(self, ctx: Any) -> bool | None:
        """The ``before_tool_call`` hook: False blocks the call."""
        import json

        name = self.target(str(ctx.tool_name))
        args = dict(ctx.tool_input or {})
        key = (name, json.dumps(args, sort_keys=True, default=str))
        with self._lock:
            aid = self._approvals.get(key)
        req = tool_call_request(self._actor(ctx), name, args, self.context, aid)
        try:
            d: Decision = self.backend.decide(req)
        except Exception as exc:  # fail closed
            self._remember(ctx, None, f"charter could not decide ({type(exc).__name__}); denied")
            return False
        if d.outcome is Outcome.ALLOW:
            with self._lock:
                self._approvals.pop(key, None)
            self._remember(ctx, d, "")
            return None
        if d.outcome is Outcome.REQUIRE_APPROVAL and d.obligations.get("approval_id"):
            aid = str(d.obligations["approval_id"])
            with self._lock:
                self._approvals[key] = aid
            why = (
                f"charter: this call needs human approval ({decision_reasons(d)}); approval {aid} is "
                "pending. Call the tool again with the same input once it is approved."
            )
        else:
            why = f"charter: {d.outcome.value}: {decision_reasons(d)}"
        self._remember(ctx, None, why)
        return False

    def after(self, ctx: Any) -> str | None:
        """The ``after_tool_call`` hook: charter's reasons for a blocked call; settles an allowed one."""
        with self._lock:
            found = self._calls.pop(id(ctx.tool_input), None)
        if found is None:
            return None
        d, why = found
        if d is None:
            return why
        if d.hold_id or self.context.get("run"):
            # the tool ran: a settlement problem is traced, not raised into the crew
            with contextlib.suppress(Exception):
                self.backend.settle(d.id, outcome="success")
        return None

    def _remember(self, ctx: Any, d: Decision | None, why: str) -> None:
        with self._lock:
            if len(self._calls) > 10_000:  # calls whose after-hook never came: bounded
                self._calls.clear()
            self._calls[id(ctx.tool_input)] = (d, why)

    def register(self) -> CharterHooks:
        """Register both hooks globally with CrewAI (every crew and agent in this process)."""
        from crewai.hooks import register_after_tool_call_hook, register_before_tool_call_hook

        register_before_tool_call_hook(self.before)
        register_after_tool_call_hook(self.after)
        return self

    def unregister(self) -> None:
        """Remove both hooks."""
        from crewai.hooks import unregister_after_tool_call_hook, unregister_before_tool_call_hook

        unregister_before_tool_call_hook(self.before)
        unregister_after_tool_call_hook(self.after)
