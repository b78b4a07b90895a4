"""The CrewAI adapter with the real `crewai` package: its hook registry and dispatch, real tools.

CrewAI 1.x pins mcp<2 and pydantic<2.13, so it cannot share a virtualenv with charter's dev
extras (mcp 2.x); this test is skipped there and runs in a venv with `charter[crewai]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("crewai", reason="crewai is not installed (pip install 'charter[crewai]')")

from crewai.hooks import ToolCallHookContext, clear_all_tool_call_hooks
from crewai.hooks.tool_hooks import run_after_tool_call_hooks, run_before_tool_call_hooks
from crewai.tools import tool

import charter
from charter.integrations.crewai import CharterHooks

POLICY = """
policy crew-test
agents from "agents.yaml"
roles research, payments
tool kb.read { }
tool pay.transfer { arg amount: double }
permit research { actor role research  action call kb.read  reason "Research reads." }
permit payments { actor role payments  action call pay.transfer  reason "Payments pay." }
require approval medium {
  action call pay.transfer
  when args.amount > 100.0
  approvers treasury
  reason "Transfers above 100 need treasury."
}
"""
AGENTS = """
agents:
  - {id: researcher, roles: [research]}
  - {id: payer, roles: [payments]}
groups:
  treasury: [alice]
"""


@pytest.fixture()
def eng(tmp_path: Path) -> charter.Engine:
    (tmp_path / "agents.yaml").write_text(AGENTS, "utf-8")
    (tmp_path / "p.charter").write_text(POLICY, "utf-8")
    return charter.Engine(charter.load(tmp_path))


ran: list[str] = []


@tool("kb.read")
def kb_read(doc: str) -> str:
    """Read a document."""
    ran.append(f"read {doc}")
    return f"contents of {doc}"


@tool("pay.transfer")
def transfer(amount: float, to: str) -> str:
    """Transfer money."""
    ran.append(f"transfer {amount:g}")
    return f"sent {amount:g}"


class _Agent:
    def __init__(self, role: str):
        self.role = role
        self.verbose = False


def _call(t: Any, args: dict[str, Any], agent: Any) -> str:
    """What CrewAI's tool execution does around a tool: before hooks, the tool, after hooks."""
    structured = t.to_structured_tool()
    ctx = ToolCallHookContext(tool_name=t.name, tool_input=args, tool=structured, agent=agent)
    if run_before_tool_call_hooks(ctx):
        blocked = "Tool execution blocked by hook."
        after = ToolCallHookContext(
            tool_name=t.name,
            tool_input=args,
            tool=structured,
            agent=agent,
            tool_result=blocked,
            raw_tool_result=blocked,
        )
        return run_after_tool_call_hooks(after) or blocked
    result = str(structured.invoke(args))
    after = ToolCallHookContext(
        tool_name=t.name,
        tool_input=args,
        tool=structured,
        agent=agent,
        tool_result=result,
        raw_tool_result=result,
    )
    return run_after_tool_call_hooks(after) or result


def test_hooks_allow_refuse_and_hold(eng: charter.Engine) -> None:
    ran.clear()
    hooks = CharterHooks(eng, context={"run": "r-crew"}).register()
    try:
        assert _call(kb_read, {"doc": "d1"}, _Agent("researcher")) == "contents of d1"
        refused = _call(transfer, {"amount": 5, "to": "x"}, _Agent("researcher"))
        assert "charter: deny" in refused
        held = _call(transfer, {"amount": 500, "to": "x"}, _Agent("payer"))
        assert "needs human approval" in held
        assert ran == ["read d1"]
        aid = held.split("; approval ")[1].split(" ")[0]
        eng.approvals.approve(aid, "alice", "ok")
        assert _call(transfer, {"to": "x", "amount": 500}, _Agent("payer")) == "sent 500"
        assert ran == ["read d1", "transfer 500"]
    finally:
        hooks.unregister()
        clear_all_tool_call_hooks()
