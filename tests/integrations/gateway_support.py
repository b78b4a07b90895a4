"""Shared pieces of the gateway tests: a policy, tokens, the test servers, and a gateway served over HTTP."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import charter
from charter.engine.observe import Observer

HERE = Path(__file__).resolve().parent
SERVERS = HERE / "gateway_servers.py"

POLICY = """
policy gateway-test
agents from "agents.yaml"
roles research, writing, payments

tool kb.read { arg doc: string }
tool kb.write { }
tool kb.echo { }
tool pay.transfer { arg amount: double }
tool pay.read_balance { }
tool pay.fail { }

permit research-reads {
  actor role research
  action call kb.read, kb.echo
  reason "Research reads the knowledge base."
}

permit writers {
  actor role writing
  action call kb.read, kb.write
  reason "Writers read and write the knowledge base."
}

permit payments {
  actor role payments
  action call pay.transfer, pay.read_balance, pay.fail
  reason "The payments agent moves money."
}

forbid big-transfers {
  action call pay.transfer
  when args.amount > 1000.0
  reason "No transfer above 1,000."
}

require approval medium-transfers {
  action call pay.transfer
  when args.amount > 100.0
  approvers treasury
  reason "Transfers above 100 need treasury."
}

on result balances-are-financial {
  action call pay.read_balance
  then label financial
  reason "A balance is financial data."
}
"""
AGENTS = """
agents:
  - {id: research-agent, roles: [research]}
  - {id: writer-agent, roles: [writing]}
  - {id: payments-agent, roles: [payments]}
groups:
  treasury: [alice, bob]
"""
TOKENS = {
    "research-agent": "research-token-0123456789",
    "writer-agent": "writer-token-0123456789ab",
    "payments-agent": "payments-token-0123456789",
    "approver": "approver-token-0123456789",
}
TOKENS_YAML = "tokens:\n" + "\n".join(
    f"  - {{name: {name}, role: {'approver' if name == 'approver' else 'orchestrator'}, token: {tok}}}"
    for name, tok in TOKENS.items()
)


def write_policy(tmp: Path) -> Path:
    """The policy directory and the tokens file in ``tmp``."""
    d = tmp / "policy"
    d.mkdir(exist_ok=True)
    (d / "agents.yaml").write_text(AGENTS, "utf-8")
    (d / "gateway.charter").write_text(POLICY, "utf-8")
    (tmp / "tokens.yaml").write_text(TOKENS_YAML, "utf-8")
    return d


def stdio_server(name: str) -> dict[str, Any]:
    """The config entry of a test server over stdio."""
    return {"name": name, "command": [sys.executable, str(SERVERS), name, "stdio"], "prefix": f"{name}."}


def free_port() -> int:
    """A free local TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Wait until something listens on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@contextlib.contextmanager
def http_server(name: str) -> Iterator[str]:
    """A test server over Streamable HTTP in a subprocess; yields its URL."""
    port = free_port()
    p = subprocess.Popen(
        [sys.executable, str(SERVERS), name, "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()


class Recorder(Observer):
    """Keeps every decision and settlement of an engine."""

    def __init__(self) -> None:
        self.decisions: list[Any] = []
        self.settlements: list[Any] = []

    def decision_finished(self, token: Any, request: Any, decision: Any) -> None:
        self.decisions.append(decision)

    def settled(self, settlement: Any) -> None:
        self.settlements.append(settlement)


def engine(tmp: Path, store: Any = None) -> tuple[charter.Engine, Recorder]:
    """An engine on the test policy, observed."""
    rec = Recorder()
    eng = charter.Engine(charter.load(write_policy(tmp)), store=store, observers=[rec])
    return eng, rec


@contextlib.contextmanager
def serve_http(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not t.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(10)


def client(target: Any, token: str | None = None, **kw: Any) -> Any:
    """The mcp SDK's client for a URL (with a bearer token) or a stdio command."""
    from mcp import Client

    if isinstance(target, str):
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        target = streamable_http_client(target, http_client=create_mcp_http_client(headers=headers))
    return Client(target, cache=None, **kw)


def text(result: Any) -> str:
    """The text of a tool result."""
    return " ".join(getattr(c, "text", "") for c in result.content)
