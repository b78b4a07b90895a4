"""Many `charter serve` replicas on ONE Redis or ONE PostgreSQL: budgets, rates and stops hold."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from charter.client import Client
from charter.enums import Outcome
from charter.state import open_store

from .conftest import POLICY, secret, write_policy
from .procs import PG_DSN, REDIS_HOST, REDIS_PORT, Serve, pg_cleanup, port_open, redis_cleanup, start_all

pytestmark = pytest.mark.slow

REPLICAS, CLIENTS = 4, 32
BUDGET_USD, RATE = 100, 50
REPLICA_POLICY = (
    POLICY
    + f"""
tool shared-pay {{ }}
tool shared-search {{ }}
tool look {{ }}
permit shared {{ action call shared-pay, shared-search, look }}
budget shared-budget {{
  scope workflow
  action call shared-pay
  limit {BUDGET_USD} USD
}}
rate shared-rate {{
  scope workflow
  action call shared-search
  limit {RATE} per 1h
}}
"""
)
#: Every figure measured, printed at the end of the session (tests/server/README in the report).
FIGURES: dict[str, Any] = {}


@pytest.fixture(params=["redis", "postgresql"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, list[Serve]]]:
    backend = request.param
    tag = f"charter_rep_{uuid.uuid4().hex[:10]}"
    if backend == "redis":
        if not port_open(REDIS_HOST, REDIS_PORT):
            pytest.skip("Redis not reachable")
        url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={tag}"
    else:
        if not port_open("127.0.0.1", 5432):
            pytest.skip("PostgreSQL not reachable")
        url = f"{PG_DSN}?schema={tag}"
    policy = write_policy(tmp_path / "policy", REPLICA_POLICY)
    procs = start_all(REPLICAS, policy, url, tmp_path, "--poll", "0")
    try:
        yield backend, url, procs
    finally:
        for p in procs:
            p.stop()
        (redis_cleanup if backend == "redis" else pg_cleanup)(tag)


def _fan_out(procs: list[Serve], work: Any) -> list[Any]:
    """Run ``work(client)`` in CLIENTS threads, client i talking to replica i % REPLICAS."""
    barrier = threading.Barrier(CLIENTS)

    def one(i: int) -> Any:
        c = Client(procs[i % len(procs)].url, secret("orch"), timeout=30)
        barrier.wait()
        try:
            return work(c, i)
        finally:
            c.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(one, range(CLIENTS)))


def test_replicas_share_budget_rate_and_stops(replicas: tuple[str, str, list[Serve]]) -> None:
    backend, url, procs = replicas
    wf = "wf-shared"
    figures: dict[str, Any] = {"replicas": len(procs), "clients": CLIENTS}

    # ---- a shared budget is never overspent, and every allowed action is settled once ---------
    def spend(c: Client, i: int) -> tuple[int, int]:
        allowed = settled = 0
        for _ in range(8):  # 256 attempts at 1 USD on a 100 USD budget
            d = c.decide(
                {
                    "actor": {"id": f"agent-{i}"},
                    "action": {"target": "shared-pay"},
                    "context": {"workflow": wf},
                    "cost": {"USD": 1},
                }
            )
            assert d.outcome in (Outcome.ALLOW, Outcome.DENY), d.to_dict()
            if d.allowed:
                allowed += 1
                settled += c.settle(d.id, actual_cost=1).committed
        return allowed, settled

    t0 = time.perf_counter()
    res = _fan_out(procs, spend)
    allowed, settled = sum(a for a, _ in res), sum(s for _, s in res)
    store = open_store(url)
    try:
        spent = store.ledger_total(f"b:shared-budget:{wf}") / 1_000_000
    finally:
        store.close()
    figures["budget"] = {
        "attempts": CLIENTS * 8,
        "allowed": allowed,
        "settled": settled,
        "spent_usd": spent,
        "limit_usd": BUDGET_USD,
        "overspend_usd": max(0.0, spent - BUDGET_USD),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    assert allowed == BUDGET_USD and settled == allowed, figures
    assert spent == BUDGET_USD, figures  # overspend exactly 0 (and nothing lost)

    # ---- a shared rate limit is never exceeded ----------------------------------------------------
    def search(c: Client, i: int) -> int:
        return sum(
            c.decide(
                {
                    "actor": {"id": f"agent-{i}"},
                    "action": {"target": "shared-search"},
                    "context": {"workflow": wf},
                }
            ).allowed
            for _ in range(4)
        )

    rate_allowed = sum(_fan_out(procs, search))
    figures["rate"] = {"attempts": CLIENTS * 4, "allowed": rate_allowed, "limit": RATE}
    assert rate_allowed == RATE, figures

    # ---- a stop on one replica is seen by every replica within 1 s ----------------------------------
    ops = [Client(p.url, secret("ops")) for p in procs]
    orch = [Client(p.url, secret("orch")) for p in procs]
    samples: list[float] = []
    for n in range(20):
        agent = f"stopped-{n}"
        for c in orch:  # everybody allows it first
            assert c.decide({"actor": {"id": agent}, "action": {"target": "look"}}).allowed
        ops[n % len(ops)].stops.stop("agent", agent, reason="propagation test")
        t_stop = time.perf_counter()
        for c in orch:
            while True:
                d = c.decide({"actor": {"id": agent}, "action": {"target": "look"}})
                if d.outcome is Outcome.HALT:
                    samples.append(time.perf_counter() - t_stop)
                    break
                assert time.perf_counter() - t_stop < 1.0, f"replica {c.url} did not see the stop in 1 s"
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(0.99 * len(samples)))]
    figures["stop_propagation_ms"] = {
        "samples": len(samples),
        "p50": round(statistics.median(samples) * 1e3, 2),
        "p99": round(p99 * 1e3, 2),
        "max": round(samples[-1] * 1e3, 2),
    }
    FIGURES[backend] = figures
    print(f"\nreplicas on {backend}: {figures}")
    assert p99 <= 0.25, figures
