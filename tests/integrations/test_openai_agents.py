"""The OpenAI Agents SDK integration with the real `agents` package, no model calls."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "agents", reason="the openai-agents package is not installed (pip install 'charter[openai-agents]')"
)

from agents import Agent, FunctionTool, ToolInputGuardrailData, function_tool
from agents.tool_context import ToolContext
from agents.tool_guardrails import ToolOutputGuardrailData

import charter
from charter.integrations.openai_agents import CharterTools

ROOT = Path(__file__).resolve().parents[2]
PAY = {"amount": 12000.0, "payee": "globex", "currency": "USD", "new_payee": False}


def _ctx(tool: str, args: dict[str, Any], call_id: str) -> ToolContext[Any]:
    return ToolContext(context=None, tool_name=tool, tool_call_id=call_id, tool_arguments=json.dumps(args))


def test_guardrail_and_needs_approval_backed_by_the_engine() -> None:
    engine = charter.Engine(charter.load(ROOT / "policies"))
    ct = CharterTools(engine, agent="payments-agent", context={"workflow": "wf-oa", "run": "r-oa"})
    agent = Agent(name="payments-agent")

    @function_tool(
        name_override="payments.transfer",
        needs_approval=ct.bind("payments.transfer"),
        tool_input_guardrails=[ct.input_guardrail],
        tool_output_guardrails=[ct.output_guardrail],
    )
    def transfer(amount: float, payee: str, currency: str, new_payee: bool) -> str:
        """Pay a supplier."""
        return f"paid {amount:g} to {payee}"

    @function_tool(
        name_override="payments.verify-payee",
        needs_approval=ct.bind("payments.verify-payee"),
        tool_input_guardrails=[ct.input_guardrail],
        tool_output_guardrails=[ct.output_guardrail],
    )
    def verify(payee: str) -> str:
        """Verify a payee."""
        return "verified"

    assert isinstance(transfer, FunctionTool) and transfer.tool_input_guardrails == [ct.input_guardrail]

    async def main() -> None:
        g = ct.input_guardrail
        # paying before verifying: no approval needed, but the guardrail rejects with the reason
        assert await transfer.needs_approval(None, dict(PAY), "c0") is False  # denied outright
        c = _ctx("payments.transfer", PAY, "c-early")
        out = await g.run(ToolInputGuardrailData(context=c, agent=agent))
        assert out.behavior["type"] == "reject_content"
        assert "verified before it is paid" in out.behavior["message"]
        # verify: allowed and settled by the output guardrail
        assert await verify.needs_approval(None, {"payee": "globex"}, "c1") is False
        c1 = _ctx("payments.verify-payee", {"payee": "globex"}, "c1")
        out = await g.run(ToolInputGuardrailData(context=c1, agent=agent))
        assert out.behavior["type"] == "allow"
        res = await verify.on_invoke_tool(c1, c1.tool_arguments)
        assert res == "verified"
        await ct.output_guardrail.run(ToolOutputGuardrailData(context=c1, agent=agent, output=res))
        # 12,000: the SDK is told to interrupt for approval; charter opens an approval for the call
        assert await transfer.needs_approval(None, dict(PAY), "c2") is True
        aid = ct.approval_for("c2")
        assert aid and aid.startswith("ap-")
        c2 = _ctx("payments.transfer", PAY, "c2")
        out = await g.run(ToolInputGuardrailData(context=c2, agent=agent))
        assert out.behavior["type"] == "reject_content" and aid in out.behavior["message"]
        engine.approvals.approve(aid, "alice")
        engine.approvals.approve(aid, "bob")
        out = await g.run(ToolInputGuardrailData(context=c2, agent=agent))
        assert out.behavior["type"] == "allow", out.behavior
        assert await transfer.on_invoke_tool(c2, c2.tool_arguments) == "paid 12000 to globex"
        # the approval is used once (here the same-call tripwire also fires: 6 identical calls)
        out = await g.run(ToolInputGuardrailData(context=c2, agent=agent))
        assert out.behavior["type"] == "reject_content"

    asyncio.run(main())


def test_unknown_tool_is_rejected_for_the_model() -> None:
    ct = CharterTools(charter.Engine(charter.load(ROOT / "policies")), agent="research-agent")
    out = asyncio.run(
        ct.input_guardrail.run(
            ToolInputGuardrailData(
                context=_ctx("shell.exec", {"cmd": "rm -rf /"}, "x"), agent=Agent(name="r")
            )
        )
    )
    assert out.behavior["type"] == "reject_content" and "deny" in out.behavior["message"]


def test_guardrails_await_the_async_client(tmp_path: Path) -> None:
    """With a sidecar, the async guardrails use charter.client.AsyncClient (no blocking call in
    the event loop): decisions and the settlement go over it."""
    from tests.server.conftest import secret, write_policy
    from tests.server.procs import Serve

    from charter.client import AsyncClient

    s = Serve(write_policy(tmp_path / "policy"), "memory://", tmp_path, "--poll", "0")
    try:
        s.wait_ready()

        class Spy(AsyncClient):
            calls: list[str] = []  # noqa: RUF012

            async def decide(self, request: Any) -> Any:
                self.calls.append(request["action"]["target"])
                return await super().decide(request)

        async def main() -> None:
            backend = Spy(s.url, secret("orch"))
            ct = CharterTools(backend, agent="c1", context={"run": "r-async"})
            agent = Agent(name="c1")
            ok = await ct.input_guardrail.run(
                ToolInputGuardrailData(context=_ctx("search", {}, "a1"), agent=agent)
            )
            assert ok.behavior["type"] == "allow"
            await ct.output_guardrail.run(
                ToolOutputGuardrailData(context=_ctx("search", {}, "a1"), agent=agent, output="x")
            )
            no = await ct.input_guardrail.run(
                ToolInputGuardrailData(context=_ctx("nope", {}, "a2"), agent=agent)
            )
            assert no.behavior["type"] == "reject_content" and "deny" in no.behavior["message"]
            assert Spy.calls == ["search", "nope"]
            await backend.aclose()

        asyncio.run(asyncio.wait_for(main(), 60))
    finally:
        s.stop()
