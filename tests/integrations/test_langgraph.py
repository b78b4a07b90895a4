"""The LangGraph integration in a real small graph: interrupt on require_approval, resume with it."""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

pytest.importorskip("langgraph", reason="langgraph is not installed (pip install 'charter[langgraph]')")

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

import charter
from charter.integrations.langgraph import charter_tool_node

ROOT = Path(__file__).resolve().parents[2]


class State(TypedDict, total=False):
    tool_calls: list[dict[str, Any]]
    tool_results: Annotated[list[Any], operator.add]


def test_graph_interrupts_for_approval_and_resumes() -> None:
    engine = charter.Engine(charter.load(ROOT / "policies"))
    paid: list[float] = []

    def transfer(amount: float, payee: str, currency: str, new_payee: bool) -> str:
        paid.append(amount)
        return f"paid {amount:g}"

    tools = {"payments.verify-payee": lambda payee: "verified", "payments.transfer": transfer}
    node = charter_tool_node(engine, "payments-agent", tools, context={"workflow": "wf-lg", "run": "r-lg"})
    g = StateGraph(State)
    g.add_node("tools", node)
    g.add_edge(START, "tools")
    g.add_edge("tools", END)
    graph = g.compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t1"}}

    pay = {"amount": 12000.0, "payee": "globex", "currency": "USD", "new_payee": False}
    first = {"tool_calls": [{"name": "payments.transfer", "args": pay}]}
    r = graph.invoke(first, {"configurable": {"thread_id": "t0"}})
    assert r["tool_results"][0]["outcome"] == "deny"  # not verified yet: denied, no interrupt
    r = graph.invoke(
        {
            "tool_calls": [
                {"name": "payments.verify-payee", "args": {"payee": "globex"}},
                {"name": "payments.transfer", "args": pay},
            ]
        },
        cfg,
    )
    intr = r["__interrupt__"][0].value
    assert intr["charter"] == "approval" and intr["approval_id"].startswith("ap-") and not paid
    for who in ("alice", "bob"):
        engine.approvals.approve(intr["approval_id"], who)
    r = graph.invoke(Command(resume=intr["approval_id"]), cfg)
    assert [x.get("result") for x in r["tool_results"]] == ["verified", "paid 12000"]
    assert paid == [12000.0]


def test_resume_without_an_approval_is_denied() -> None:
    engine = charter.Engine(charter.load(ROOT / "policies"))
    node = charter_tool_node(engine, "sre-agent", {"deploy.release": lambda service, env: "deployed"})
    g = StateGraph(State)
    g.add_node("tools", node)
    g.add_edge(START, "tools")
    g.add_edge("tools", END)
    graph = g.compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t2"}}
    deploy = {"name": "deploy.release", "args": {"service": "api", "env": "prod"}}
    r = graph.invoke({"tool_calls": [deploy]}, cfg)
    aid = r["__interrupt__"][0].value["approval_id"]
    r = graph.invoke(Command(resume=aid), cfg)  # nobody approved: still pending
    assert r["tool_results"][0]["outcome"] == "require_approval"


def test_resume_does_not_run_earlier_calls_again() -> None:
    """Issue 20: on resume LangGraph re-runs the node; the calls made before the interrupt are
    replayed from the checkpoint, not decided or executed a second time."""
    engine = charter.Engine(charter.load(ROOT / "policies"))
    ran: list[str] = []

    def verify(payee: str) -> str:
        ran.append(f"verify {payee}")
        return "verified"

    def transfer(amount: float, payee: str, currency: str, new_payee: bool) -> str:
        ran.append(f"transfer {amount:g}")
        return f"paid {amount:g}"

    tools = {"payments.verify-payee": verify, "payments.transfer": transfer}
    node = charter_tool_node(engine, "payments-agent", tools, context={"workflow": "wf-lg", "run": "r-twice"})
    g = StateGraph(State)
    g.add_node("tools", node)
    g.add_edge(START, "tools")
    g.add_edge("tools", END)
    graph = g.compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t-twice"}}
    pay = {"amount": 12000.0, "payee": "globex", "currency": "USD", "new_payee": False}
    calls = [
        {"name": "payments.verify-payee", "args": {"payee": "globex"}},
        {"name": "payments.transfer", "args": pay},
    ]
    decided = len(engine.approvals.list())
    r = graph.invoke({"tool_calls": calls}, cfg)
    aid = r["__interrupt__"][0].value["approval_id"]
    assert ran == ["verify globex"]
    for who in ("alice", "bob"):
        engine.approvals.approve(aid, who)
    r = graph.invoke(Command(resume=aid), cfg)
    assert [x.get("result") for x in r["tool_results"]] == ["verified", "paid 12000"]
    assert ran == ["verify globex", "transfer 12000"]  # kb.read-style calls ran once
    assert len(engine.approvals.list()) == decided + 1  # no second, unused approval record


def test_a_second_interrupt_in_the_same_node_keeps_both_earlier_results() -> None:
    """Two calls needing approval in one node: two interrupts, each resumed; nothing runs twice."""
    engine = charter.Engine(charter.load(ROOT / "policies"))
    ran: list[str] = []

    def release(service: str, env: str) -> str:
        ran.append(f"{service}@{env}")
        return "deployed"

    node = charter_tool_node(engine, "sre-agent", {"deploy.release": release})
    g = StateGraph(State)
    g.add_node("tools", node)
    g.add_edge(START, "tools")
    g.add_edge("tools", END)
    graph = g.compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t-two"}}
    calls = [
        {"name": "deploy.release", "args": {"service": "api", "env": "staging"}},
        {"name": "deploy.release", "args": {"service": "api", "env": "prod"}},
        {"name": "deploy.release", "args": {"service": "web", "env": "prod"}},
    ]
    r = graph.invoke({"tool_calls": calls}, cfg)
    first = r["__interrupt__"][0].value["approval_id"]
    engine.approvals.approve(first, "dan")
    r = graph.invoke(Command(resume=first), cfg)
    second = r["__interrupt__"][0].value["approval_id"]
    assert second != first and ran == ["api@staging", "api@prod"]
    engine.approvals.approve(second, "erin")
    r = graph.invoke(Command(resume=second), cfg)
    assert [x.get("result") for x in r["tool_results"]] == ["deployed"] * 3
    assert ran == ["api@staging", "api@prod", "web@prod"]
