"""OpenAI Agents SDK: a tool input guardrail, an output guardrail that settles, and `needs_approval`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from charter.engine.decision import Decision
from charter.enums import Outcome
from charter.extras import missing_extra
from charter.hits import decision_reasons
from charter.integrations._aio import adecide, asettle
from charter.integrations.requests import tool_call_request

try:  # the framework itself: without it the adapter cannot work, and says which extra to install
    import agents  # noqa: F401
except ImportError as _exc:
    raise missing_extra("openai-agents", "the OpenAI Agents SDK adapter", _exc) from _exc

__all__ = ["CharterTools"]


class CharterTools:
    """Decides every function-tool call of an `agents` Agent with charter.

    ``backend`` is an Engine or a :class:`charter.client.AsyncClient` (a sync Client works too,
    in a worker thread): the guardrails are async and never block the event loop on charter.

    * ``needs_approval`` (pass it to ``@function_tool(needs_approval=...)``): decides the call and
      returns True when charter requires approval, so the SDK interrupts the run; the charter
      approval id is kept per tool call (``approval_for(call_id)``) for the approvers.
    * ``input_guardrail``: decides (or reuses the decision made by ``needs_approval``); anything
      but allow rejects the call with charter's reasons, which the model sees. After the SDK run
      is approved, the call is resubmitted with the charter approval id: only a charter approval
      with its quorum lets it through.
    * ``output_guardrail``: settles the allowed call (success) so budgets commit.
    """

    def __init__(self, backend: Any, agent: str | None = None, context: Mapping[str, Any] | None = None):
        from agents import ToolInputGuardrail, ToolOutputGuardrail

        self.backend = backend
        self.agent = agent
        self.context = dict(context or {})
        self._decisions: dict[str, Decision] = {}
        self._approvals: dict[str, str] = {}
        self.input_guardrail: Any = ToolInputGuardrail(self._check, name="charter")
        self.output_guardrail: Any = ToolOutputGuardrail(self._settle, name="charter-settle")

    def request(
        self, actor: str, tool: str, args: Mapping[str, Any], approval: str | None = None
    ) -> dict[str, Any]:
        """The decision request for one tool call."""
        return tool_call_request(actor, tool, args, self.context, approval)

    def approval_for(self, call_id: str) -> str | None:
        """The charter approval id opened for a tool call (None if it did not need one)."""
        return self._approvals.get(call_id)

    async def _decide(self, actor: str, tool: str, args: Mapping[str, Any], call_id: str) -> Decision:
        aid = self._approvals.get(call_id)
        d = await adecide(self.backend, self.request(actor, tool, args, aid))
        if d.outcome is Outcome.REQUIRE_APPROVAL and d.obligations.get("approval_id"):
            self._approvals[call_id] = str(d.obligations["approval_id"])
        return d

    async def needs_approval(self, run_context: Any, params: dict[str, Any], call_id: str) -> bool:
        """SDK `needs_approval` callable (use :meth:`bind` to name the tool)."""
        tool = getattr(run_context, "tool_name", None) or params.get("__tool__") or "unknown"
        actor = self.agent or getattr(getattr(run_context, "agent", None), "name", None) or "agent"
        d = await self._decide(
            actor, str(tool), {k: v for k, v in params.items() if k != "__tool__"}, call_id
        )
        self._decisions[call_id] = d
        return d.outcome is Outcome.REQUIRE_APPROVAL

    def bind(self, tool_name: str) -> Any:
        """A `needs_approval` callable for one named tool (the SDK does not pass the tool name)."""

        async def needs_approval(run_context: Any, params: dict[str, Any], call_id: str) -> bool:
            return await self.needs_approval(run_context, {**params, "__tool__": tool_name}, call_id)

        return needs_approval

    async def _check(self, data: Any) -> Any:
        from agents import ToolGuardrailFunctionOutput

        ctx = data.context
        call_id = str(getattr(ctx, "tool_call_id", "") or "")
        try:
            args = json.loads(ctx.tool_arguments or "{}")
        except ValueError:
            return ToolGuardrailFunctionOutput.reject_content("charter: the tool arguments are not JSON")
        actor = self.agent or getattr(data.agent, "name", None) or "agent"
        d = self._decisions.pop(call_id, None)
        if d is None or d.outcome is not Outcome.ALLOW:
            d = await self._decide(actor, ctx.tool_name, args, call_id)
        info = {"decision_id": d.id, "outcome": d.outcome.value, "rules": [h.id for h in d.rules]}
        if d.outcome is Outcome.ALLOW:
            self._decisions[f"settle:{call_id}"] = d
            return ToolGuardrailFunctionOutput.allow(output_info=info)
        why = decision_reasons(d)
        if d.outcome is Outcome.REQUIRE_APPROVAL:
            aid = self._approvals.get(call_id)
            info["approval_id"] = aid
            return ToolGuardrailFunctionOutput.reject_content(
                f"charter: this call needs human approval ({why}); approval {aid} is pending.", info
            )
        return ToolGuardrailFunctionOutput.reject_content(f"charter: {d.outcome.value}: {why}", info)

    async def _settle(self, data: Any) -> Any:
        from agents import ToolGuardrailFunctionOutput

        d = self._decisions.pop(f"settle:{getattr(data.context, 'tool_call_id', '')}", None)
        if d is not None and (d.hold_id or self.context.get("run")):
            await asettle(self.backend, d.id, outcome="success")
        return ToolGuardrailFunctionOutput.allow()
