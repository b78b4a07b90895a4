"""The gateway's raw JSON-RPC fast path against its SDK path: the same cases through the real mcp
SDK client over stdio and HTTP give the same results, and hostile input gets the SDK's answers."""

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

from mcp import StdioServerParameters
from tests.integrations.gateway_support import (
    TOKENS,
    client,
    engine,
    http_server,
    serve_http,
    stdio_server,
    write_policy,
)

from charter.integrations.gateway import Gateway, http_app
from charter.integrations.gateway_config import parse_config
from charter.server.auth import load_tokens

pytestmark = pytest.mark.timeout(180)

PV = "io.modelcontextprotocol/protocolVersion"
ENVELOPE = {
    PV: "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}

#: (agent, tool, arguments): allowed, denied, hidden, unknown, held for approval, a failing tool,
#: arguments the server refuses, an on-result label
CASES = [
    ("research-agent", "kb__read", {"doc": "q3"}),
    ("research-agent", "kb__write", {"doc": "q3", "text": "x"}),
    ("research-agent", "kb__nope", {}),
    ("research-agent", "kb__read", {}),
    ("research-agent", "kb__echo", {"value": 'é\u2028\n"<>'}),
    ("payments-agent", "pay__transfer", {"amount": 50, "to": "acme"}),
    ("payments-agent", "pay__transfer", {"amount": 5000, "to": "acme"}),
    ("payments-agent", "pay__transfer", {"amount": 500, "to": "acme"}),
    ("payments-agent", "pay__fail", {}),
    ("payments-agent", "pay__read_balance", {}),
]

_IDS = re.compile(r"\b(ap|d|esc)-[0-9a-f][\w-]*")


def _normal(value: Any) -> Any:
    """A result with decision/approval ids blanked (each run mints new ones)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return json.loads(_IDS.sub(r"\1-ID", text))


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 150))


async def _results(target: Any, token: str | None = None) -> list[Any]:
    out = []
    async with client(target, token) as c:
        for _, tool, args in [x for x in CASES if token is None or TOKENS[x[0]] == token]:
            r = await c.call_tool(tool, args)
            out.append(_normal(r.model_dump(mode="json", by_alias=True, exclude_none=True)))
    return out


# ---- stdio front: `charter gateway` with and without the fast path -------------------------------


def _stdio(tmp: Path, token: str, *extra: str) -> StdioServerParameters:
    write_policy(tmp)
    cfg = tmp / "gateway.yaml"
    servers = [stdio_server(n) for n in ("kb", "pay")]
    cfg.write_text(json.dumps({"inbox": "http://127.0.0.1:8181/ui", "servers": servers}), "utf-8")
    return StdioServerParameters(
        command=sys.executable,
        args=[
            "-m", "charter", "gateway", "--config", str(cfg), "--policy", str(tmp / "policy"),
            "--tokens", str(tmp / "tokens.yaml"), *extra,
        ],
        env={**os.environ, "CHARTER_TOKEN": token},
        cwd=str(tmp),
    )  # fmt: skip


@pytest.mark.parametrize("agent", ["research-agent", "payments-agent"])
def test_stdio_fast_path_answers_as_the_sdk_path(tmp_path: Path, agent: str) -> None:
    token = TOKENS[agent]
    expected = [c for c in CASES if c[0] == agent]

    async def both() -> tuple[list[Any], list[Any]]:
        fast = []
        slow = []
        async with client(_stdio(tmp_path, token)) as c, client(_stdio(tmp_path, token, "--no-fast")) as s:
            for _, tool, args in expected:
                for cli, out in ((c, fast), (s, slow)):
                    r = await cli.call_tool(tool, args)
                    out.append(_normal(r.model_dump(mode="json", by_alias=True, exclude_none=True)))
        return fast, slow

    fast, slow = _run(both())
    assert fast == slow
    assert len(fast) == len(expected)
    assert any(not r.get("isError") for r in fast) and any(r.get("isError") for r in fast)


# ---- HTTP front, HTTP and stdio servers behind ------------------------------------------------


def _gateway(tmp: Path, kb_url: str, fast: bool) -> Gateway:
    eng, _ = engine(tmp)
    cfg = parse_config(
        {
            "inbox": "http://127.0.0.1:8181/ui",
            "servers": [
                {"name": "kb", "url": kb_url, "prefix": "kb."},
                {**stdio_server("pay"), "labels": ["from-pay"]},
            ],
        }
    )
    return Gateway(eng, cfg, tokens=load_tokens(tmp / "tokens.yaml"), fast=fast)


def test_http_fast_path_answers_as_the_sdk_path(tmp_path: Path) -> None:
    write_policy(tmp_path)
    with http_server("kb") as kb_url:
        fast_gw, slow_gw = _gateway(tmp_path, kb_url, True), _gateway(tmp_path, kb_url, False)
        with serve_http(http_app(fast_gw)) as fast_base, serve_http(http_app(slow_gw)) as slow_base:
            for agent in ("research-agent", "payments-agent"):
                fast = _run(_results(f"{fast_base}/mcp", TOKENS[agent]))
                slow = _run(_results(f"{slow_base}/mcp", TOKENS[agent]))
                assert fast == slow, agent
            n = len(CASES)
            assert fast_gw.fast_calls == n and slow_gw.fast_calls == 0
            # settled alike: the on-result label and the server's label reached the engine
            for gw in (fast_gw, slow_gw):
                rec = gw.engine.observers[0]  # type: ignore[attr-defined]
                labels = sorted(tuple(sorted(s.labels)) for s in rec.settlements)
                assert ("financial", "from-pay") in labels
            fast_s = sorted(
                (s.result, tuple(sorted(s.labels))) for s in fast_gw.engine.observers[0].settlements
            )  # type: ignore[attr-defined]
            slow_s = sorted(
                (s.result, tuple(sorted(s.labels))) for s in slow_gw.engine.observers[0].settlements
            )  # type: ignore[attr-defined]
            assert fast_s == slow_s
