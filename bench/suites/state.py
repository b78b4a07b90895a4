"""The `state` suite: a whole decide() with one budget and one rate check, per state store."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from typing import Any

from bench.suites import Options
from bench.ui import UI

DESCRIPTION = "decide() with one budget and one rate check, per store (memory, sqlite, redis, postgresql)"

POLICY = """
units USD
tool api { arg q: string }
permit all { action call api  reason "ok" }
budget daily { scope agent  limit 1000000000 USD per day  reason "budget" }
rate per-minute { scope agent  limit 1000000000 per 1m  reason "rate" }
"""


def _decides(engine: Any, n: int) -> list[float]:
    out = []
    for i in range(n):
        req = {
            "actor": {"id": f"a{i % 50}"},
            "action": {"target": "api", "args": {"q": str(i % 7)}},
            "cost": {"USD": 0.01},
        }
        t = time.perf_counter_ns()
        d = engine.decide(req)
        out.append((time.perf_counter_ns() - t) / 1000)
        if d.outcome.value != "allow":
            raise RuntimeError(f"unexpected {d.outcome.value}")
    return out


def run(opts: Options, ui: UI) -> dict[str, Any]:
    """Measure every store that is reachable; unreachable ones are listed as skipped."""
    import charter
    from bench.state_bench import _stores

    policy = charter.loads(POLICY)
    load0 = [round(x, 2) for x in os.getloadavg()]
    n = 300 if opts.quick else 2000
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in _stores(tmp):
            try:
                store, clean = make()
                store.ping()
            except Exception as exc:  # a missing server is reported, not fatal
                notes.append(f"{name}: skipped ({str(exc).splitlines()[0]})")
                continue
            try:
                engine = charter.Engine(policy, store=store)
                _decides(engine, 50)
                ts = sorted(_decides(engine, n))
                per_s = 1e6 / (sum(ts) / len(ts))
                results.append(
                    {
                        "engine": "charter",
                        "store": name,
                        "op": "decide",
                        "n": n,
                        "p50_us": round(ts[len(ts) // 2], 1),
                        "p99_us": round(ts[int(len(ts) * 0.99)], 1),
                        "per_s": round(per_s),
                    }
                )
            finally:
                store.close()
                clean()
    load1 = [round(x, 2) for x in os.getloadavg()]
    return {
        "suite": "state",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg": {"start": load0, "end": load1},
        "results": results,
        "notes": notes,
        "targets_p50_us": {"sqlite": 60, "redis": 300, "postgresql": 1000},
    }


def render(result: dict[str, Any], ui: UI) -> None:
    """One table: store, p50, p99, decisions/s, target."""
    targets = result["targets_p50_us"]
    rows = [
        [
            r["store"],
            f"{r['p50_us']:,.1f}",
            f"{r['p99_us']:,.1f}",
            f"{r['per_s']:,}",
            str(targets.get(r["store"], "-")),
        ]
        for r in result["results"]
    ]
    ui.table(
        "decide() with a budget and a rate, per store",
        ["store", "p50 us", "p99 us", "decisions/s", "target p50 us"],
        rows,
    )
    for n in result["notes"]:
        ui.note(n)
    if "load_avg" in result:
        ui.note(
            f"load average (1, 5, 15 min) at start {result['load_avg']['start']}, "
            f"at end {result['load_avg']['end']}"
        )
    ui.note(
        "postgresql-async: the same store with synchronous_commit=off (no WAL flush per decision; "
        "see docs/state.md)"
    )
