"""Micro-benchmark of StateStore.apply(): one budget line + one rate-limit hit per call."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from charter.state import Batch, BudgetLine, HitOp, ReserveOp, open_store
from charter.state.base import StateStore

REDIS_URL = os.environ.get("CHARTER_BENCH_REDIS", "redis://127.0.0.1:6379/0")
#: Simulated time between calls: with 1 s windows/hold TTLs about 20 entries stay live per key,
#: a steady state like an agent calling 20 tools/s whose holds are not yet settled.
STEP_S = 0.05
PG_URL = os.environ.get("CHARTER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _measure(store: StateStore, n: int, warmup: int) -> tuple[list[float], float]:
    t0 = time.time()
    line_limit = 10**15
    samples: list[float] = []
    wall = 0.0
    for i in range(warmup + n):
        now = t0 + i * STEP_S
        batch = Batch(
            now=now,
            hits=(HitOp("rl:agent=bench", window_s=1.0, limit=10**9),),
            reserve=ReserveOp(
                f"h{i}",
                (
                    BudgetLine(
                        "b:agent-daily:agent=bench",
                        limit=line_limit,
                        amount=1000,
                        expires_at=t0 + 86400,
                    ),
                ),
                ttl_s=1.0,
            ),
        )
        s = time.perf_counter()
        res = store.apply(batch)
        e = time.perf_counter() - s
        assert res.reserve is not None and res.reserve.ok
        if i >= warmup:
            samples.append(e)
            wall += e
    return samples, wall


def _stores(tmp: str) -> list[tuple[str, Callable[[], tuple[StateStore, Callable[[], None]]]]]:
    def memory() -> tuple[StateStore, Callable[[], None]]:
        return open_store("memory://"), lambda: None

    def sqlite() -> tuple[StateStore, Callable[[], None]]:
        return open_store(f"sqlite://{tmp}/bench.db"), lambda: None

    def redis() -> tuple[StateStore, Callable[[], None]]:
        prefix = "bench_" + uuid.uuid4().hex[:8]
        store = open_store(f"{REDIS_URL}?prefix={prefix}")

        def clean() -> None:
            import redis as r

            c = r.Redis.from_url(REDIS_URL)
            keys = list(c.scan_iter(match=f"{prefix}:*", count=1000))
            for i in range(0, len(keys), 500):
                c.delete(*keys[i : i + 500])
            c.close()

        return store, clean

    def _postgresql(options: str = "") -> tuple[StateStore, Callable[[], None]]:
        schema = "bench_" + uuid.uuid4().hex[:8]
        store = open_store(f"{PG_URL}?schema={schema}{options}")

        def clean() -> None:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as c:
                c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

        return store, clean

    def postgresql() -> tuple[StateStore, Callable[[], None]]:
        return _postgresql()

    def postgresql_async() -> tuple[StateStore, Callable[[], None]]:
        # The same store with synchronous_commit=off (docs/state.md: the last few hundred ms of
        # acknowledged writes can be lost if the server crashes): shows the cost of the WAL flush.
        return _postgresql("&options=-c%20synchronous_commit%3Doff")

    return [
        ("memory", memory),
        ("sqlite", sqlite),
        ("redis", redis),
        ("postgresql", postgresql),
        ("postgresql-async", postgresql_async),
    ]


def run(quick: bool) -> list[dict[str, Any]]:
    """Measure apply() per backend; a backend whose server is absent is reported as skipped."""
    n, warmup = (500, 100) if quick else (5000, 500)
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, factory in _stores(tmp):
            try:
                store, clean = factory()
            except Exception as exc:  # a server not running is not a benchmark failure
                out.append({"store": name, "op": "apply", "skipped": str(exc)})
                continue
            try:
                samples, wall = _measure(store, n, warmup)
            finally:
                store.close()
                clean()
            samples.sort()
            out.append(
                {
                    "store": name,
                    "op": "apply",
                    "n": n,
                    "p50_us": round(statistics.median(samples) * 1e6, 1),
                    "p99_us": round(samples[int(len(samples) * 0.99) - 1] * 1e6, 1),
                    "per_s": round(n / wall),
                }
            )
    return out


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    for row in run(quick):
        print(json.dumps(row))
