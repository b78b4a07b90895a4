"""The `trace` suite: what recording a decision costs (append p50) and decide() with and without it."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.suites import Options
from bench.ui import UI

DESCRIPTION = "trace append cost per decision, decide() with and without the trace, verify speed"

POLICY = """
tool api { arg amount: double }
group g { members a, b }
permit all { action call api  reason "ok" }
forbid big { action call api
  when args.amount > 900.0
  reason "too big" }
"""


def _time(fn: Any, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter_ns()
        fn(i)
        out.append((time.perf_counter_ns() - t) / 1000)
    return sorted(out)


def run(opts: Options, ui: UI) -> dict[str, Any]:
    """Append p50/p99, decide with/without trace, records verified per second."""
    import charter
    from charter.engine.req import parse_request
    from charter.trace import TraceLog, verify_log

    n = 2000 if opts.quick else 20000
    policy = charter.loads(POLICY)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        log = TraceLog(Path(tmp) / "t.db")
        plain = charter.Engine(policy)
        traced = charter.Engine(policy, trace=log)

        def req(i: int) -> dict[str, Any]:
            return {"actor": {"id": f"a{i % 20}"}, "action": {"target": "api", "args": {"amount": float(i % 1000)}}}

        d = plain.decide(req(1))
        r = parse_request(req(1))
        app = _time(lambda i: log.record_decision(d, r), n)
        log.flush()
        base = _time(lambda i: plain.decide(req(i)), n)
        with_trace = _time(lambda i: traced.decide(req(i)), n)
        log.close()
        rep = verify_log(Path(tmp) / "t.db")
        for name, ts in (("append", app), ("decide", base), ("decide+trace", with_trace)):
            results.append({"engine": "charter", "op": name, "n": n, "p50_us": round(ts[len(ts) // 2], 2),
                            "p99_us": round(ts[int(len(ts) * 0.99)], 2)})
        results.append({"engine": "charter", "op": "verify", "n": rep.records, "per_s": round(rep.per_s)})
    return {"suite": "trace", "python": platform.python_version(), "cpus": os.cpu_count(), "results": results,
            "target_append_p50_us": 20, "target_verify_per_s": 50000}


def render(result: dict[str, Any], ui: UI) -> None:
    """One table of operations."""
    rows = [[r["op"], str(r["n"]), str(r.get("p50_us", "-")), str(r.get("p99_us", "-")),
             f"{r['per_s']:,}" if "per_s" in r else "-"] for r in result["results"]]
    ui.table("trace", ["op", "n", "p50 us", "p99 us", "records/s"], rows)
    ui.note(f"targets: append p50 <= {result['target_append_p50_us']} us; verify >= "
            f"{result['target_verify_per_s']:,} records/s")
