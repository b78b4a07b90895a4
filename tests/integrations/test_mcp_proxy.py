"""`charter mcp-proxy` between the mcp package's real stdio client and a real MCP server process."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the mcp package is not installed (pip install 'charter[mcp]')")

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

HERE = Path(__file__).resolve().parent
POLICY = """
policy mcp-test
agents from "agents.yaml"
units USD
tool search { }
tool pay {
  arg amount: double
}
tool big { }
permit search {
  actor any
  action call search
  reason "Anyone may search."
}
forbid no-pay {
  action call pay
  when args.amount > 100.0
  reason "The assistant may not pay more than 100."
}
permit small-pay { action call pay }
permit big { action call big }
require approval big-needs-finance {
  action call big
  approvers finance
  reason "Big calls need finance."
}
"""
INVENTORY = "agents: []\ngroups:\n  finance: [alice]\n"


def _policy(tmp: Path) -> Path:
    d = tmp / "policy"
    d.mkdir()
    (d / "agents.yaml").write_text(INVENTORY, "utf-8")
    (d / "policy.charter").write_text(POLICY, "utf-8")
    return d


def _params(tmp: Path, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "charter",
            "mcp-proxy",
            "--policy",
            str(_policy(tmp)),
            "--agent",
            "assistant",
            "--store",
            f"sqlite:///{tmp / 'state.db'}",
            "--trace",
            str(tmp / "trace.db"),
            "--run",
            "r1",
            *extra,
            "--",
            sys.executable,
            str(HERE / "mcp_server.py"),
        ],
        cwd=str(tmp),
    )


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def test_proxy_allows_denies_and_requires_approval(tmp_path: Path) -> None:
    async def main() -> None:
        async with stdio_client(_params(tmp_path)) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            tools = await s.list_tools()
            assert {t.name for t in tools.tools} == {"search", "pay", "big"}
            ok = await s.call_tool("search", {"query": "globex"})
            assert not ok.is_error and "results for globex" in _text(ok)
            small = await s.call_tool("pay", {"amount": 50.0})
            assert not small.is_error and "paid 50" in _text(small)
            denied = await s.call_tool("pay", {"amount": 500.0})
            assert denied.is_error and "may not pay more than 100" in _text(denied)
            held = await s.call_tool("big", {"note": "x"})
            assert held.is_error and "Approval id: ap-" in _text(held)

    asyncio.run(asyncio.wait_for(main(), 60))
    from charter.trace.log import query

    time.sleep(0.2)
    recs = query(tmp_path / "trace.db", limit=100)
    outcomes = sorted(r["outcome"] for r in recs if r.get("kind") == "decision")
    assert outcomes == ["allow", "allow", "deny", "require_approval"]


def test_proxy_holds_until_approved(tmp_path: Path) -> None:
    """--hold: the call waits for the approval, then reaches the server."""
    import charter
    from charter.state import open_store

    def approver() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
        eng = charter.Engine(charter.load(tmp_path / "policy"), store=store)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                pending = eng.approvals.list("pending")
            except Exception:
                pending = []
            if pending:
                eng.approvals.approve(pending[0]["id"], "alice", "fine")
                return
            time.sleep(0.1)

    async def main() -> str:
        async with (
            stdio_client(_params(tmp_path, "--hold", "30")) as (read, write),
            ClientSession(read, write) as s,
        ):
            await s.initialize()
            t = threading.Thread(target=approver)
            t.start()
            res = await s.call_tool("big", {"note": "approved"})
            t.join()
            assert not res.is_error, _text(res)
            return _text(res)

    assert "big done: approved" in asyncio.run(asyncio.wait_for(main(), 60))
