"""Shared by the engine-side attack tests: an engine on every store, a real sidecar, hostile numbers.

Imported by tests/adversarial/test_{idempotency,settle,nonfinite,approval_binding,
history_without_run,request_limits}.py; their fixtures come from here.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from tests.server.procs import Serve, tokens_file
from tests.state.conftest import BACKENDS, cleanup, store_url

import charter
from charter.state import open_store

__all__ = [
    "BACKENDS",
    "HOSTILE",
    "POLICY",
    "Clock",
    "Http",
    "budget_line",
    "engine_on",
    "http_for",
    "pay",
    "serve",
]

#: The numbers an attacker sends where a number belongs.
HOSTILE_FLOATS = [math.nan, math.inf, -math.inf, -0.0, 1e308, -1e308, 1e30, -1.0, 5e-324]
HOSTILE = st.one_of(
    st.sampled_from([*HOSTILE_FLOATS, 2**63, -(2**63) - 1, 10**40, True]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**80), 2**80),
)

POLICY = """
policy attacks
units USD, tokens
roles payer
group finance { members alice, bob }
agent payments-agent { role payer }
tool pay { arg amount: double  arg to: string }
tool search { }
permit pay {
  action call pay
  reason "Payments within budget."
}
permit search {
  action call search
  reason "Anyone searches."
}
require approval big-payments {
  action call pay
  when args.amount > 10000.0
  approvers finance
  reason "Payments over 10,000 need finance."
}
budget daily {
  scope agent
  action call pay
  limit 1000 USD per day
  reason "1,000 USD per agent and day."
}
"""

#: Requests start at this time (a fixed clock: windows and expiries are deterministic).
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Clock:
    """A clock the test moves."""

    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def engine_on(backend: str, tmp_path: Path, policy: str = POLICY) -> Iterator[tuple[charter.Engine, Clock]]:
    """An engine over a fresh store of ``backend`` (skipped when its server is not running)."""
    tag = "adv_" + uuid.uuid4().hex[:10]
    store = open_store(store_url(backend, tmp_path, tag))
    clock = Clock()
    engine = charter.Engine(charter.loads(policy), store=store, clock=clock)
    try:
        yield engine, clock
    finally:
        store.close()
        cleanup(backend, tag)


def pay(amount: float = 10.0, **extra: Any) -> dict[str, Any]:
    """A payment request of ``amount`` USD (cost and argument)."""
    req: dict[str, Any] = {
        "actor": {"id": "payments-agent"},
        "action": {"target": "pay", "args": {"amount": amount, "to": "acme"}},
        "cost": {"USD": amount},
    }
    req.update(extra)
    return req


def budget_line(engine: charter.Engine, decision: charter.Decision) -> tuple[int, int]:
    """(used, reserved) micro-units of the budget line a decision consulted."""
    key = next(b.key for b in decision.boundaries if b.kind == "budget" and b.key)
    assert key is not None
    return engine.store.budget_status([key], now=engine.clock())[key]


class Http:
    """A client of a real sidecar (``charter serve`` in a subprocess) with the orchestrator's token."""

    def __init__(self, url: str):
        import httpx
        from tests.server.conftest import secret

        self.client = httpx.Client(base_url=url, timeout=10.0)
        self.headers = {"Authorization": f"Bearer {secret('orch')}", "Content-Type": "application/json"}
        self.ops = {"Authorization": f"Bearer {secret('ops')}", "Content-Type": "application/json"}
        self.approver = {"Authorization": f"Bearer {secret('alice')}", "Content-Type": "application/json"}

    def post(
        self, path: str, body: Any, raw: str | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        """POST JSON (or the raw text ``raw``, e.g. with a NaN token) and return the response."""
        import json

        content = raw if raw is not None else json.dumps(body)
        return self.client.post(path, content=content, headers=headers or self.headers)

    def close(self) -> None:
        self.client.close()


def serve(tmp_path: Path, policy: str = POLICY, store: str = "memory://") -> Iterator[Http]:
    """A real sidecar over ``policy`` (the test groups and operators of tests/server) on loopback."""
    from tests.server.conftest import INVENTORY

    (tmp_path / "agents.yaml").write_text(INVENTORY, "utf-8")
    header, rest = policy.strip("\n").split("\n", 1)
    rest = rest.replace("group finance { members alice, bob }\n", "")
    stops = "stops {\n  operators operators\n  resume requires 2\n}\n"
    text = f'{header}\nagents from "agents.yaml"\n{rest}\n{stops}'

    path = tmp_path / "policy.charter"
    path.write_text(text, "utf-8")
    tokens_file(tmp_path / "tokens.json")
    proc = Serve(path, store, tmp_path)
    try:
        proc.wait_ready()
        http = Http(proc.url)
        try:
            yield http
        finally:
            http.close()
    finally:
        proc.stop()


def http_for(tmp_path_factory: pytest.TempPathFactory, policy: str = POLICY) -> Iterator[Http]:
    """A module-wide sidecar (one process per test module)."""
    yield from serve(tmp_path_factory.mktemp("sidecar"), policy)
