"""The AG2 adapter with the real `ag2` package: a scripted model (ag2.testing), real tools and middleware."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ag2", reason="the ag2 package is not installed (pip install 'charter[ag2]')")

from ag2 import Agent, tool
from ag2.events import ToolCallEvent, ToolResultEvent
from ag2.testing import TestConfig
from tests.integrations.gateway_support import engine

from charter.integrations.ag2 import CharterToolMiddleware, charter_middleware


def _results(reply: Any) -> list[str]:
    async def events() -> list[Any]:
        return list(await reply.context.stream.history.get_events())

    return [
        " ".join(str(getattr(p, "content", p)) for p in e.result.parts)
        for e in asyncio.run(events())
        if isinstance(e, ToolResultEvent)
    ]


def _agent(
    tmp: Path, *calls: ToolCallEvent, per_tool: bool = False, run: str | None = None
) -> tuple[Any, Any, list[str]]:
    eng, rec = engine(tmp)
    ran: list[str] = []

    def read(doc: str) -> str:
        ran.append(f"read {doc}")
        return f"contents of {doc}"

    def write(doc: str, text: str) -> str:
        ran.append(f"write {doc}")
        return "wrote"

    def transfer(amount: float, to: str) -> str:
        ran.append(f"transfer {amount:g}")
        return f"sent {amount:g}"

    context = {"run": run} if run else None
    hook = (
        [CharterToolMiddleware(eng, "payments-agent" if per_tool else "research-agent", context)]
        if per_tool
        else []
    )
    tools = [
        tool(read, name="kb.read", middleware=hook),
        tool(write, name="kb.write", middleware=hook),
        tool(transfer, name="pay.transfer", middleware=hook),
    ]
    mw = [] if per_tool else [charter_middleware(eng, "research-agent", context)]
    agent = Agent("research-agent", config=TestConfig(*calls, "done"), tools=tools, middleware=mw)
    return agent, (eng, rec), ran


def test_agent_middleware_allows_and_refuses(tmp_path: Path) -> None:
    agent, (_, rec), ran = _agent(
        tmp_path,
        ToolCallEvent("kb.read", arguments='{"doc": "d1"}'),
        ToolCallEvent("kb.write", arguments='{"doc": "d1", "text": "x"}'),
        ToolCallEvent("kb.read", arguments="[1, 2]"),
        run="r-ag2",
    )
    reply = asyncio.run(agent.ask("go"))
    assert ran == ["read d1"]  # the write never ran
    results = _results(reply)
    assert "contents of d1" in results[0]
    assert "charter: deny" in results[1] and "no rule permits it" in results[1]
    assert "not an object" in results[2]
    assert [d.outcome.value for d in rec.decisions] == ["allow", "deny"]
    assert len(rec.settlements) == 1 and rec.settlements[0].result == "success"


def test_tool_middleware_holds_for_approval_then_runs(tmp_path: Path) -> None:
    eng, rec = engine(tmp_path)
    ran: list[str] = []

    def transfer(amount: float, to: str) -> str:
        ran.append(f"transfer {amount:g}")
        return f"sent {amount:g}"

    hook = CharterToolMiddleware(eng, "payments-agent")
    tools = [tool(transfer, name="pay.transfer", middleware=[hook])]

    def turn(arguments: str) -> list[str]:
        agent = Agent(
            "payments",
            config=TestConfig(ToolCallEvent("pay.transfer", arguments=arguments), "ok"),
            tools=tools,
        )
        return _results(asyncio.run(agent.ask("pay")))

    (held,) = turn('{"amount": 500, "to": "acme"}')
    aid = rec.decisions[-1].obligations["approval_id"]
    assert "needs human approval" in held and aid in held and ran == []
    (still,) = turn('{"amount": 500, "to": "acme"}')  # not approved yet: still held, nothing ran
    assert "needs human approval" in still and ran == []
    eng.approvals.approve(aid, "alice", "ok")
    (other,) = turn('{"amount": 900, "to": "acme"}')  # the approval does not cover another call
    assert "sent" not in other and ran == []
    (done,) = turn('{"to": "acme", "amount": 500}')  # the same call (keys in any order): it runs
    assert "sent 500" in done and ran == ["transfer 500"]
    (big,) = turn('{"amount": 5000, "to": "acme"}')
    assert "No transfer above 1,000." in big and ran == ["transfer 500"]
