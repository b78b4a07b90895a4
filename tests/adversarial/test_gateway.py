"""Hostile MCP input at `charter gateway`: every attack is refused (fail closed) and the gateway
keeps serving. Real mcp SDK client and real MCP servers (subprocesses)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the mcp package is not installed (pip install 'charter[mcp]')")

import httpx
import mcp_types as types
from tests.integrations.gateway_support import (
    TOKENS,
    client,
    engine,
    serve_http,
    stdio_server,
    text,
    write_policy,
)

from charter.integrations.gateway import MAX_LINE, Gateway, http_app
from charter.integrations.gateway_config import parse_config
from charter.server.auth import load_tokens

pytestmark = pytest.mark.timeout(180)


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 120))


def _gateway(tmp: Path, agent: str | None = "research-agent") -> tuple[Gateway, Any]:
    eng, rec = engine(tmp)
    cfg = parse_config({"servers": [stdio_server("kb"), stdio_server("pay")]})
    return Gateway(eng, cfg, tokens=load_tokens(tmp / "tokens.yaml"), agent=agent), rec


async def _calls(gw: Gateway, calls: list[tuple[str, Any]]) -> list[types.CallToolResult]:
    """Each call through the real SDK client (in-process transport), then one good call that
    must still work: the gateway survived."""
    out = []
    async with gw.running(), client(gw.server) as c:
        for name, args in calls:
            out.append(await c.call_tool(name, args))
        ok = await c.call_tool("kb__read", {"doc": "after"})
        assert not ok.is_error and text(ok) == "contents of after"
    return out


NAMES = [
    "no_such_tool",
    "kb__read__x",  # a__b__c: routes are looked up whole, never split
    "kb____read",
    "kb__",
    "__read",
    "read",  # the upstream name without its namespace
    "pay__kb__read",
    "kb__read\x00",
    "kb__read ",
    "KB__READ",
    "kb\u2063__read",  # an invisible separator
    "kb__" + "r" * 10_000,
    "",
]


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_unknown_and_tricky_names_are_refused(tmp_path: Path, name: str) -> None:
    gw, rec = _gateway(tmp_path)
    (res,) = _run(_calls(gw, [(name, {"doc": "x"})]))
    assert res.is_error and "unknown tool" in text(res)
    assert len(text(res)) < 300  # a huge name is not echoed back whole
    assert [d.outcome.value for d in rec.decisions] == ["allow"]  # only the good call was decided


def test_hidden_tool_called_directly_never_reaches_the_server(tmp_path: Path) -> None:
    gw, rec = _gateway(tmp_path)
    (w, t) = _run(_calls(gw, [("kb__write", {"doc": "d", "text": "x"}), ("pay__transfer", {"amount": 1})]))
    for r in (w, t):
        assert r.is_error and "wrote" not in text(r) and "sent" not in text(r)
        assert (r.meta or {})["charter"]["outcome"] == "deny"
    assert [d.outcome.value for d in rec.decisions] == ["deny", "deny", "allow"]
    assert len(rec.settlements) == 1  # only the good call ran


BAD_ARGS: list[Any] = [
    {"doc": math.nan},
    {"doc": math.inf},
    {"doc": -math.inf},
    {"doc": "x", "n": [math.nan]},
    {f"k{i}": i for i in range(20_000)},  # more values than a request may hold
    {"doc": "x" * (2 * 1024 * 1024)},  # more text than a request may hold
]


def _deep(n: int) -> Any:
    v: Any = "x"
    for _ in range(n):
        v = {"a": v}
    return v


@pytest.mark.parametrize("args", [*BAD_ARGS, {"doc": _deep(200)}], ids=range(len(BAD_ARGS) + 1))
def test_hostile_arguments_fail_closed(tmp_path: Path, args: Any) -> None:
    """The arguments as the gateway receives them (the SDK's client would turn NaN into null
    before sending; another client may not): refused before the server sees them."""
    gw, rec = _gateway(tmp_path)

    async def main() -> Any:
        async with gw.running():
            res = await gw.call(object(), "kb__read", args)
            ok = await gw.call(object(), "kb__read", {"doc": "after"})
            assert not ok.is_error
            return res

    res = _run(main())
    assert res.is_error and "contents of" not in text(res)
    assert "refused the request" in text(res)
    assert len(rec.settlements) == 1  # the hostile call never ran


def test_non_object_arguments_fail_closed(tmp_path: Path) -> None:
    gw, rec = _gateway(tmp_path)

    async def main() -> list[Any]:
        async with gw.running():
            return [await gw.call(object(), "kb__read", a) for a in (["doc"], "doc", 7, {1: "x"})]

    for res in _run(main()):
        assert res.is_error and "contents of" not in text(res)
    assert rec.settlements == []


def test_unidentified_client_is_refused(tmp_path: Path) -> None:
    gw, rec = _gateway(tmp_path, agent=None)

    async def main() -> tuple[list[str], types.CallToolResult]:
        async with gw.running(), client(gw.server) as c:
            return [t.name for t in (await c.list_tools()).tools], await c.call_tool("kb__read", {"doc": "x"})

    tools, res = _run(main())
    assert tools == [] and res.is_error and "not identified" in text(res)
    assert rec.decisions == []


def _http_gw(tmp: Path) -> Gateway:
    gw, _ = _gateway(tmp, agent=None)
    return gw


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "",
        "Bearer",
        "Basic " + "cmVzZWFyY2g6eA==",
        "Bearer forged-token-0123456789",
        "Bearer " + TOKENS["research-agent"][:-1],
        "Bearer " + TOKENS["research-agent"] + "x",
        "Bearer " + "t" * 100_000,
        "Bearer " + TOKENS["approver"],  # a real token without the orchestrator role
    ],
)
def test_http_refuses_missing_and_forged_tokens(tmp_path: Path, auth: str | None) -> None:
    with serve_http(http_app(_http_gw(tmp_path))) as base:
        headers = {"Authorization": auth} if auth is not None else {}
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "kb__read", "arguments": {}},
        }
        r = httpx.post(f"{base}/mcp", json=body, headers=headers, timeout=30)
        assert r.status_code == 401
        assert "contents of" not in r.text


def test_approval_is_bound_to_its_call_and_used_once(tmp_path: Path) -> None:
    """A replayed request_state (an approval id) does not approve another call, nor the same
    call twice; a forged one approves nothing."""
    gw, rec = _gateway(tmp_path, agent=None)
    with serve_http(http_app(gw, stateless=True)) as base:
        url = f"{base}/mcp"
        approved: list[str] = []

        async def main() -> list[Any]:
            async with client(url, TOKENS["payments-agent"]) as c:
                s = c.session
                first = await s.call_tool(
                    "pay__transfer", {"amount": 500, "to": "a"}, allow_input_required=True
                )
                # the client declares no elicitation: the link comes back, no question
                assert isinstance(first, types.CallToolResult) and first.is_error
                aid = (first.meta or {})["charter"]["approval_id"]
                gw.engine.approvals.approve(aid, "alice", "ok")
                approved.append(aid)
                yes = {"charter-approval": types.ElicitResult(action="accept", content={"approved": True})}
                other = await s.call_tool(
                    "pay__transfer", {"amount": 900, "to": "a"}, input_responses=yes, request_state=aid,
                    allow_input_required=True,
                )  # fmt: skip
                forged = await s.call_tool(
                    "pay__transfer", {"amount": 500, "to": "a"}, input_responses=yes,
                    request_state="ap-forged0000000000", allow_input_required=True,
                )  # fmt: skip
                good = await s.call_tool(
                    "pay__transfer", {"amount": 500, "to": "a"}, input_responses=yes, request_state=aid,
                    allow_input_required=True,
                )  # fmt: skip
                replay = await s.call_tool(
                    "pay__transfer", {"amount": 500, "to": "a"}, input_responses=yes, request_state=aid,
                    allow_input_required=True,
                )  # fmt: skip
                return [other, forged, good, replay]

        other, forged, good, replay = _run(main())
    assert other.is_error and "sent" not in text(other)
    assert forged.is_error and "sent" not in text(forged)
    assert not good.is_error and text(good) == "sent 500 to a"
    assert replay.is_error and "sent" not in text(replay)
    assert len(rec.settlements) == 1


def test_replayed_jsonrpc_ids_are_decided_each_time(tmp_path: Path) -> None:
    """The same JSON-RPC id sent again is a new call: decided (and counted) again, never
    answered from a cache, never allowed because an earlier one was."""
    gw, rec = _gateway(tmp_path, agent=None)
    with serve_http(http_app(gw, stateless=True)) as base:

        async def main() -> list[Any]:
            async with client(f"{base}/mcp", TOKENS["research-agent"]) as c:
                s = c.session
                outs = []
                for name in ("kb__read", "kb__write", "kb__read"):
                    req = types.CallToolRequest(
                        params=types.CallToolRequestParams(name=name, arguments={"doc": "d"})
                    )
                    outs.append(await s.send_request(req, types.CallToolResult))
                return outs

        a, b, c = _run(main())
    assert not a.is_error and b.is_error and not c.is_error
    assert [d.outcome.value for d in rec.decisions] == ["allow", "deny", "allow"]


def _stdio_proc(tmp: Path) -> subprocess.Popen[bytes]:
    write_policy(tmp)
    cfg = tmp / "gateway.yaml"
    cfg.write_text(json.dumps({"servers": [stdio_server("kb")]}), "utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "charter", "gateway", "--config", str(cfg), "--policy", str(tmp / "policy"),
         "--agent", "research-agent"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=str(tmp),
        env={k: v for k, v in os.environ.items() if k not in ("CHARTER_TOKENS", "CHARTER_TOKEN")},
    )  # fmt: skip


def test_stdio_survives_garbage_and_oversized_lines(tmp_path: Path) -> None:
    p = _stdio_proc(tmp_path)
    assert p.stdin is not None and p.stdout is not None

    def send(obj: Any) -> None:
        raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        p.stdin.write(raw + b"\n")  # type: ignore[union-attr]
        p.stdin.flush()  # type: ignore[union-attr]

    def answer(want_id: int) -> dict[str, Any]:
        while True:
            line = p.stdout.readline()  # type: ignore[union-attr]
            assert line, "the gateway closed its stdout"
            msg = json.loads(line)
            if msg.get("id") == want_id:
                return dict(msg)

    try:
        send(
            {"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "t", "version": "1"}}}
        )  # fmt: skip
        assert "result" in answer(1)
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send(b"this is not json")
        send(b"[" * 100_000)
        nan_call = b'{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": '
        send(nan_call + b'{"name": "kb__read", "arguments": {"doc": NaN}}}')
        r2 = answer(2)  # a NaN literal: refused (by the SDK's JSON parser or by the engine)
        assert "error" in r2 or r2["result"]["isError"] is True
        send(b"x" * (MAX_LINE + 10))
        send(
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "tools/call",
                "params": {"name": "read", "arguments": {"doc": "q"}},
            }
        )
        r3 = answer(3)
        assert r3["result"]["content"][0]["text"] == "contents of q"
        send(
            {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "write", "arguments": {}}}
        )
        r3b = answer(3)  # the same id again: a new call, decided again (and denied)
        assert r3b["result"]["isError"] is True
    finally:
        p.stdin.close()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
