"""`charter gateway` between the mcp SDK's real client and real MCP servers, over stdio and HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the mcp package is not installed (pip install 'charter[mcp]')")

import httpx
import mcp_types as types
from mcp import StdioServerParameters
from tests.integrations.gateway_support import (
    TOKENS,
    client,
    engine,
    http_server,
    serve_http,
    stdio_server,
    text,
    write_policy,
)

from charter.integrations.gateway import Gateway, GatewayError, ToolFilter, http_app
from charter.integrations.gateway_config import GatewayConfigError, parse_config
from charter.server.auth import load_tokens

pytestmark = pytest.mark.timeout(120)


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 90))


# ---- stdio in front, two stdio servers behind -------------------------------------------------


def _stdio_gateway(tmp: Path, token: str, *extra: str) -> StdioServerParameters:
    write_policy(tmp)
    cfg = tmp / "gateway.yaml"
    servers = [stdio_server(n) for n in ("kb", "pay")]
    cfg.write_text(json.dumps({"inbox": "http://127.0.0.1:8181/ui", "servers": servers}), "utf-8")
    return StdioServerParameters(
        command=sys.executable,
        args=[
            "-m", "charter", "gateway", "--config", str(cfg), "--policy", str(tmp / "policy"),
            "--tokens", str(tmp / "tokens.yaml"), "--trace", str(tmp / "trace.db"), *extra,
        ],
        env={**os.environ, "CHARTER_TOKEN": token},
        cwd=str(tmp),
    )  # fmt: skip


def test_stdio_gateway_filters_and_decides(tmp_path: Path) -> None:
    async def research() -> None:
        async with client(_stdio_gateway(tmp_path, TOKENS["research-agent"])) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert names == {"kb__read", "kb__echo"}  # kb.write and every pay tool are hidden
            ok = await c.call_tool("kb__read", {"doc": "q3"})
            assert not ok.is_error and text(ok) == "contents of q3"
            # a hidden tool called directly: the engine decides it, and denies it
            hidden = await c.call_tool("kb__write", {"doc": "q3", "text": "x"})
            assert hidden.is_error and "no rule permits it" in text(hidden)

    async def payments() -> None:
        async with client(_stdio_gateway(tmp_path, TOKENS["payments-agent"])) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert names == {"pay__transfer", "pay__read_balance", "pay__fail"}
            small = await c.call_tool("pay__transfer", {"amount": 50, "to": "acme"})
            assert not small.is_error and text(small) == "sent 50 to acme"
            big = await c.call_tool("pay__transfer", {"amount": 5000, "to": "acme"})
            assert big.is_error and "No transfer above 1,000." in text(big)
            assert (big.meta or {})["charter"]["outcome"] == "deny"
            held = await c.call_tool("pay__transfer", {"amount": 500, "to": "acme"})
            assert held.is_error
            m = re.search(r"http://127\.0\.0\.1:8181/ui/approvals/(ap-[\w-]+)", text(held))
            assert m, text(held)
            assert (held.meta or {})["charter"]["approval_id"] == m.group(1)

    _run(research())
    _run(payments())
    from charter.trace.log import query

    outcomes = sorted(
        r["outcome"] for r in query(tmp_path / "trace.db", limit=100) if r.get("kind") == "decision"
    )
    assert outcomes == ["allow", "allow", "deny", "deny", "require_approval"]


def test_stdio_gateway_refuses_a_forged_token(tmp_path: Path) -> None:
    async def main() -> None:
        async with client(_stdio_gateway(tmp_path, "forged-token-0123456789")) as c:
            await c.list_tools()

    with pytest.raises(BaseException):  # noqa: B017 - the gateway exits before the handshake
        _run(main())


# ---- HTTP in front; a stdio server and an HTTP server behind -----------------------------------


def _http_gateway(tmp: Path, kb_url: str, **kw: Any) -> tuple[Gateway, Any]:
    eng, rec = engine(tmp)
    cfg = parse_config(
        {
            "inbox": "http://127.0.0.1:8181/ui",
            "run": "run-1",
            "servers": [
                {"name": "kb", "url": kb_url, "prefix": "kb."},
                {**stdio_server("pay"), "labels": ["from-pay"]},
            ],
        }
    )
    gw = Gateway(eng, cfg, tokens=load_tokens(tmp / "tokens.yaml"))
    return gw, rec


def test_http_gateway_identifies_each_request(tmp_path: Path) -> None:
    with http_server("kb") as kb_url:
        gw, rec = _http_gateway(tmp_path, kb_url)
        with serve_http(http_app(gw)) as base:
            url = f"{base}/mcp"

            async def as_agent(name: str) -> set[str]:
                async with client(url, TOKENS[name]) as c:
                    names = {t.name for t in (await c.list_tools()).tools}
                    if name == "research-agent":
                        r = await c.call_tool("kb__read", {"doc": "d1"})
                        assert not r.is_error and text(r) == "contents of d1"
                        w = await c.call_tool("kb__write", {"doc": "d1", "text": "x"})
                        assert w.is_error
                    if name == "payments-agent":
                        b = await c.call_tool("pay__read_balance", {})
                        assert not b.is_error and text(b) == "balance 100"
                        f = await c.call_tool("pay__fail", {})
                        assert f.is_error and "fail" in text(f)
                    return names

            assert _run(as_agent("research-agent")) == {"kb__read", "kb__echo"}
            assert _run(as_agent("writer-agent")) == {"kb__read", "kb__write"}
            assert _run(as_agent("payments-agent")) == {"pay__transfer", "pay__read_balance", "pay__fail"}
            # no token, a forged token, an approver's token (may not decide): 401 before any MCP
            init = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            for auth in (None, "Bearer forged-token-0123456789", f"Bearer {TOKENS['approver']}"):
                headers = {"Authorization": auth} if auth else {}
                r = httpx.post(url, json=init, headers=headers)
                assert r.status_code == 401, (auth, r.status_code)
    # every allowed call was settled, with the server's labels and the on-result rule's labels
    by_outcome = {s.result: s for s in rec.settlements}
    assert set(by_outcome) == {"success", "failure"}
    balance = [s for s in rec.settlements if "financial" in s.labels]
    assert balance and "from-pay" in balance[0].labels
    assert len(rec.settlements) == 3  # kb__read, pay__read_balance, pay__fail


def test_http_gateway_approval_by_elicitation(tmp_path: Path) -> None:
    """A client that declares elicitation is asked; once approved in the engine, the call runs."""
    with http_server("kb") as kb_url:
        gw, _ = _http_gateway(tmp_path, kb_url)
        asked: list[str] = []

        async def elicit(context: Any, params: Any) -> types.ElicitResult:
            asked.append(params.message)
            aid = re.search(r"Approval (ap-[\w-]+)", params.message)
            assert aid, params.message
            gw.engine.approvals.approve(aid.group(1), "alice", "ok")
            return types.ElicitResult(action="accept", content={"approved": True})

        async def decline(context: Any, params: Any) -> types.ElicitResult:
            return types.ElicitResult(action="decline")

        with serve_http(http_app(gw)) as base:

            async def main(cb: Any) -> Any:
                async with client(f"{base}/mcp", TOKENS["payments-agent"], elicitation_callback=cb) as c:
                    return await c.call_tool("pay__transfer", {"amount": 500, "to": "acme"})

            ok = _run(main(elicit))
            assert not ok.is_error and text(ok) == "sent 500 to acme", text(ok)
            assert asked and "/ui/approvals/ap-" in asked[0]
            held = _run(main(decline))
            assert held.is_error and "needs human approval" in text(held)


def test_stateless_http_asks_in_band_or_links_to_the_inbox(tmp_path: Path) -> None:
    """Stateless HTTP has no back-channel: the 2026-07-28 input_required round trip still asks;
    a client that cannot be asked gets the inbox link."""
    with http_server("kb") as kb_url:
        gw, _ = _http_gateway(tmp_path, kb_url)

        async def elicit(context: Any, params: Any) -> types.ElicitResult:
            aid = re.search(r"Approval (ap-[\w-]+)", params.message)
            assert aid, params.message
            gw.engine.approvals.approve(aid.group(1), "bob", "ok")
            return types.ElicitResult(action="accept", content={"approved": True})

        with serve_http(http_app(gw, stateless=True)) as base:

            async def main(**kw: Any) -> Any:
                async with client(f"{base}/mcp", TOKENS["payments-agent"], **kw) as c:
                    return await c.call_tool("pay__transfer", {"amount": 500, "to": "acme"})

            ok = _run(main(elicitation_callback=elicit))
            assert not ok.is_error and text(ok) == "sent 500 to acme", text(ok)
            held = _run(main())
            assert held.is_error and "/ui/approvals/ap-" in text(held)
            assert (held.meta or {})["charter"]["inbox"].startswith("http://127.0.0.1:8181/ui/approvals/ap-")


# ---- configuration and the filter ---------------------------------------------------------------


def test_single_server_is_not_namespaced_and_collisions_are_refused(tmp_path: Path) -> None:
    eng, _ = engine(tmp_path)

    async def routes(cfg: dict[str, Any]) -> list[str]:
        gw = Gateway(eng, parse_config(cfg), agent="research-agent")
        async with gw.running():
            return sorted(gw.routes)

    assert _run(routes({"servers": [stdio_server("kb")]})) == ["echo", "read", "write"]
    twice = {"namespacing": "never", "servers": [stdio_server("kb"), {**stdio_server("kb"), "name": "kb2"}]}
    with pytest.raises(GatewayError, match="namespacing: always"):
        _run(routes(twice))
    dotted = {"separator": ".", "servers": [stdio_server("kb"), stdio_server("pay")]}
    assert "pay.transfer" in _run(routes(dotted))


@pytest.mark.parametrize(
    "doc, message",
    [
        ({}, "'servers'"),
        ({"servers": []}, "'servers'"),
        ({"servers": [{"name": "a"}]}, "exactly one of"),
        ({"servers": [{"name": "a", "command": ["x"], "url": "http://h"}]}, "exactly one of"),
        ({"servers": [{"name": "a__b", "command": ["x"]}]}, "must match"),
        ({"separator": "-", "servers": [{"name": "a-b", "command": ["x"]}]}, "separator"),
        ({"servers": [{"name": "a", "url": "file:///etc/passwd"}]}, "http"),
        ({"servers": [{"name": "a", "command": ["x"]}, {"name": "a", "command": ["y"]}]}, "unique"),
        ({"servers": [{"name": "a", "command": ["x"], "extra": 1}]}, "unknown key"),
        ({"separator": "/", "servers": [{"name": "a", "command": ["x"]}]}, "separator"),
        ({"namespacing": "sometimes", "servers": [{"name": "a", "command": ["x"]}]}, "namespacing"),
    ],
)
def test_bad_configurations_are_refused(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(GatewayConfigError, match=message):
        parse_config(doc)


def test_filter_follows_permits_and_unconditional_forbids(tmp_path: Path) -> None:
    eng, _ = engine(tmp_path)
    f = ToolFilter(eng)
    assert f.visible("research-agent", "kb.read")
    assert not f.visible("research-agent", "kb.write")
    assert f.visible("payments-agent", "pay.transfer")  # the forbid has a condition: still visible
    assert not f.visible("nobody", "kb.read")
    assert not f.visible("research-agent", "no.such.tool")


def test_the_documented_configuration_is_valid() -> None:
    """The YAML example of docs/integrations.md parses into the configuration it describes."""
    import yaml

    doc = (Path(__file__).resolve().parents[2] / "docs" / "integrations.md").read_text("utf-8")
    block = doc.split("## MCP gateway", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = parse_config(yaml.safe_load(block))
    assert [s.name for s in cfg.servers] == ["kb", "web"] and cfg.namespaced
    assert cfg.servers[0].command and cfg.servers[1].url and cfg.servers[1].labels == ("untrusted",)
    assert cfg.inbox == "http://127.0.0.1:8181/ui"
