"""Hostile input at the gateway's fast path: every malformed or unusual message gets exactly the
SDK path's answer (a gateway with and without the fast path, same request, same status and body),
and the stdio front takes only exact 2026-07-28 tools/call lines."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the mcp package is not installed (pip install 'charter[mcp]')")

import httpx
from tests.integrations.gateway_support import (
    TOKENS,
    engine,
    http_server,
    serve_http,
    stdio_server,
    write_policy,
)
from tests.integrations.test_gateway_fast import ENVELOPE, _gateway, _normal, _run

from charter.integrations.gateway import Gateway, _StdioFast, http_app
from charter.integrations.gateway_config import parse_config
from charter.integrations.gateway_fast import parse_call

pytestmark = pytest.mark.timeout(180)


def _post(base: str, body: Any, token: str, **headers: str) -> httpx.Response:
    hdrs = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "kb__read",
        **headers,
    }
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{base}/mcp", content=content, headers=hdrs, timeout=30)


def _call(rid: Any = 7, name: str = "kb__read", **params: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": rid,
        "method": "tools/call",
        "params": {"name": name, "arguments": {"doc": "d"}, "_meta": ENVELOPE, **params},
    }


HOSTILE: list[tuple[str, Any, dict[str, str]]] = [
    ("well-formed", _call(), {}),
    ("string id", _call("req-1"), {}),
    ("bad json", b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {', {}),
    ("deep json", b"[" * 100_000 + b"]" * 100_000, {}),
    ("batch", [_call(1), _call(2)], {}),
    ("notification", {k: v for k, v in _call().items() if k != "id"}, {}),
    ("unknown method", {**_call(), "method": "tools/frobnicate"}, {"Mcp-Method": "tools/frobnicate"}),
    ("bool id", _call(True), {}),
    ("null id", _call(None), {}),
    ("float id", _call(1.5), {}),
    ("huge id", _call("x" * 10_000), {}),
    ("arguments not an object", _call(arguments=[1, 2]), {}),
    ("name not a string", _call(name=7), {}),  # type: ignore[arg-type]
    ("extra param", _call(requestState="ap-forged"), {}),
    ("no envelope", {**_call(), "params": {"name": "kb__read", "arguments": {}}}, {}),
    (
        "old version in envelope",
        _call(_meta={**ENVELOPE, "io.modelcontextprotocol/protocolVersion": "2025-06-18"}),
        {},
    ),
    ("header mismatch", _call(), {"Mcp-Name": "kb__write"}),
    ("method header mismatch", _call(), {"Mcp-Method": "tools/list"}),
    ("version header mismatch", _call(), {"MCP-Protocol-Version": "2099-01-01"}),
    ("wrong content type", _call(), {"Content-Type": "text/plain"}),
    ("no json accept", _call(), {"Accept": "text/event-stream"}),
    ("foreign host", _call(), {"Host": "evil.example:80"}),
    ("foreign origin", _call(), {"Origin": "http://evil.example"}),
    ("param header", _call(), {"Mcp-Param-Doc": "d"}),
    ("a response posted", {"jsonrpc": "2.0", "id": 7, "result": {}}, {}),
    ("huge body", {**_call(), "pad": "x" * (2 * 1024 * 1024)}, {}),
    ("lone surrogate in an argument", json.dumps(_call(arguments={"doc": "\ud800"})).encode(), {}),
    ("lone surrogate in a key", json.dumps(_call(arguments={"\udfff": "d"})).encode(), {}),
    ("utf-16 body", json.dumps(_call()).encode("utf-16"), {}),
    ("utf-8 bom", b"\xef\xbb\xbf" + json.dumps(_call()).encode(), {}),
    ("invalid utf-8", json.dumps(_call(arguments={"doc": "d"})).encode().replace(b'"d"', b'"\xff"'), {}),
]


@pytest.mark.parametrize("case", [h[0] for h in HOSTILE])
def test_hostile_http_requests_get_the_sdk_answer(tmp_path: Path, case: str, _http_pair: Any) -> None:
    """Each request, sent to a gateway with and without the fast path: the same status and body."""
    fast_base, slow_base, fast_gw = _http_pair
    body, headers = next((b, h) for name, b, h in HOSTILE if name == case)
    before = fast_gw.fast_calls
    a = _post(fast_base, body, TOKENS["research-agent"], **headers)
    b = _post(slow_base, body, TOKENS["research-agent"], **headers)
    assert a.status_code == b.status_code, (a.text[:300], b.text[:300])
    if b.headers.get("content-type", "").startswith("application/json"):
        assert _normal(a.json()) == _normal(b.json())
    else:
        assert a.content == b.content
    took = fast_gw.fast_calls - before
    assert took == (1 if case in ("well-formed", "string id") else 0), case
    if "surrogate" in case:  # refused, never forwarded: the upstream session lives on
        assert (
            "lone surrogate" in a.text
            and _post(slow_base, _call(), TOKENS["research-agent"]).json()["result"]
        )


@pytest.fixture(scope="module")
def _http_pair(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("pair")
    write_policy(tmp)
    with http_server("kb") as kb_url:
        fast_gw, slow_gw = _gateway(tmp, kb_url, True), _gateway(tmp, kb_url, False)
        with serve_http(http_app(fast_gw)) as fast_base, serve_http(http_app(slow_gw)) as slow_base:
            yield fast_base, slow_base, fast_gw


def test_concurrent_calls_with_one_id_are_each_answered(_http_pair: Any) -> None:
    """HTTP ids are per request: the same id from many concurrent requests is no confusion."""
    fast_base, _, _ = _http_pair

    async def main() -> list[Any]:
        async with httpx.AsyncClient(timeout=30) as c:
            hdrs = {
                "Authorization": f"Bearer {TOKENS['research-agent']}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "MCP-Protocol-Version": "2026-07-28",
                "Mcp-Method": "tools/call",
                "Mcp-Name": "kb__read",
            }
            rs = await asyncio.gather(
                *(
                    c.post(f"{fast_base}/mcp", json=_call(1, arguments={"doc": f"d{i}"}), headers=hdrs)
                    for i in range(20)
                )
            )
            return [r.json() for r in rs]

    answers = _run(main())
    assert all("result" in a for a in answers), [a for a in answers if "result" not in a][:1]
    texts = sorted(a["result"]["content"][0]["text"] for a in answers)
    assert texts == sorted(f"contents of d{i}" for i in range(20))


# ---- the stdio front's line handling, in-process ----------------------------------------------


class _Lines:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    async def write(self, text: str) -> None:
        self.lines.append(json.loads(text))


META = ENVELOPE


def test_stdio_fast_path_takes_only_exact_tools_calls(tmp_path: Path) -> None:
    eng, _ = engine(tmp_path)
    gw = Gateway(eng, parse_config({"servers": [stdio_server("kb")]}), agent="research-agent")

    async def main() -> tuple[list[bool], list[dict[str, Any]]]:
        out = _Lines()
        fast = _StdioFast(gw, out)  # type: ignore[arg-type]
        async with gw.running():
            lines = [
                json.dumps(
                    {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": ENVELOPE}}
                ),
                json.dumps(_call(2, name="read")),
                json.dumps(_call(2, name="read")),  # the id is in flight: left to the SDK
                "{not json",
                json.dumps([_call(3, name="read")]),
                json.dumps({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "read"}}),
                json.dumps({**_call(4, name="read"), "method": "tools/frobnicate"}),
                json.dumps(_call(5, name="write", arguments={"doc": "d", "text": "t"})),
                json.dumps(_call(6, name="read", inputResponses={})),
                '"tools/call"',
                json.dumps({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": "x"}),
            ]
            took = [fast.offer(x.encode() + b"\n") for x in lines]
            while fast.inflight:
                await asyncio.sleep(0.01)
        return took, out.lines

    took, answers = _run(main())
    assert took == [False, True, False, False, False, False, False, True, False, False, False]
    by_id = {a["id"]: a for a in answers}
    assert set(by_id) == {2, 5}
    assert by_id[2]["result"]["content"][0]["text"] == "contents of d"
    assert by_id[5]["result"]["isError"] is True and "no rule permits it" in json.dumps(by_id[5])


def test_stdio_fast_path_stays_off_on_handshake_connections(tmp_path: Path) -> None:
    eng, _ = engine(tmp_path)
    gw = Gateway(eng, parse_config({"servers": [stdio_server("kb")]}), agent="research-agent")
    fast = _StdioFast(gw, _Lines())  # type: ignore[arg-type]
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}}
    assert not fast.offer(json.dumps(init).encode())
    assert fast.modern is False
    assert not fast.offer(json.dumps(_call(1, name="read")).encode())


def test_parse_call_bounds_and_shapes() -> None:
    assert parse_call(_call()) is not None
    assert parse_call(_call(2**53)) is None
    assert parse_call(_call(name="x" * 257)) is None
    assert parse_call({**_call(), "extra": 1}) is None
    assert parse_call({**_call(), "jsonrpc": "1.0"}) is None
    assert parse_call(_call(_meta={"io.modelcontextprotocol/protocolVersion": "2026-07-28"})) is None
    assert parse_call([_call()]) is None


@pytest.mark.parametrize("twice", ["mcp-name", "accept", "content-type"])
def test_a_header_given_twice_gets_the_sdk_answer(_http_pair: Any, twice: str) -> None:
    fast_base, slow_base, fast_gw = _http_pair
    base = {
        "authorization": f"Bearer {TOKENS['research-agent']}",
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "kb__read",
    }
    other = {"mcp-name": "kb__write", "accept": "text/html", "content-type": "text/plain"}[twice]
    headers = [*base.items(), (twice, other)]
    before = fast_gw.fast_calls
    answers = [
        httpx.post(f"{b}/mcp", content=json.dumps(_call()).encode(), headers=headers, timeout=30)
        for b in (fast_base, slow_base)
    ]
    assert answers[0].status_code == answers[1].status_code
    assert _normal(answers[0].text) == _normal(answers[1].text)
    assert fast_gw.fast_calls == before
