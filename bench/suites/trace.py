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


def _pg_url() -> str | None:
    """A PostgreSQL trace URL with a schema of its own, when the server at 127.0.0.1:5432 is up."""
    import socket
    import uuid

    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=0.5).close()
    except OSError:
        return None
    return f"postgresql://postgres@127.0.0.1:5432/test?schema=bench_trace_{uuid.uuid4().hex[:10]}"


def _drop(url: str) -> None:
    import psycopg

    from charter.trace.pg_sink import parse_url

    dsn, schema, _, _ = parse_url(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _sink(name: str, location: str, n: int, policy: Any) -> list[dict[str, Any]]:
    """One sink's figures: queued append, decide with it, batch write rate, durable append, verify."""
    import charter
    from charter.engine.validate import validate_request
    from charter.trace import TraceLog, verify_log

    def req(i: int) -> dict[str, Any]:
        return {
            "actor": {"id": f"a{i % 20}"},
            "action": {"target": "api", "args": {"amount": float(i % 1000)}},
        }

    log = TraceLog(location)
    plain = charter.Engine(policy)
    traced = charter.Engine(policy, trace=log)
    d = plain.decide(req(1))
    r = validate_request(req(1))
    app = _time(lambda i: log.record_decision(d, r), n)
    log.flush()
    t = time.perf_counter()
    for _ in range(n):
        log.record_decision(d, r)
    log.flush()
    written = n / (time.perf_counter() - t)
    base = _time(lambda i: plain.decide(req(i)), n)
    with_trace = _time(lambda i: traced.decide(req(i)), n)
    log.close()
    durable = TraceLog(location, durable=True)
    nd = max(200, n // 10)
    dur = _time(lambda i: durable.record_decision(d, r), nd)
    durable.close()
    rep = verify_log(location)
    assert rep.ok, rep.problems
    out: list[dict[str, Any]] = []
    for op, ts in (("append", app), ("decide", base), ("decide+trace", with_trace), ("append durable", dur)):
        out.append(
            {
                "engine": "charter",
                "sink": name,
                "op": op,
                "n": len(ts),
                "p50_us": round(ts[len(ts) // 2], 2),
                "p99_us": round(ts[int(len(ts) * 0.99)], 2),
            }
        )
    out.append({"engine": "charter", "sink": name, "op": "batch write", "n": n, "per_s": round(written)})
    out.append(
        {"engine": "charter", "sink": name, "op": "verify", "n": rep.records, "per_s": round(rep.per_s)}
    )
    return out


def run(opts: Options, ui: UI) -> dict[str, Any]:
    """Per sink (SQLite; PostgreSQL when reachable): append p50/p99, decide with/without trace,
    batched write rate, durable append, records verified per second."""
    import charter

    n = 2000 if opts.quick else 20000
    policy = charter.loads(POLICY)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        results += _sink("sqlite", str(Path(tmp) / "t.db"), n, policy)
        url = _pg_url()
        if url is None:
            ui.note("PostgreSQL not reachable at 127.0.0.1:5432: postgresql sink skipped")
        else:
            try:
                results += _sink("postgresql", url + f"&key={Path(tmp) / 'pg.key'}", n, policy)
            finally:
                _drop(url)
    return {
        "suite": "trace",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "results": results,
        "target_append_p50_us": 20,
        "target_verify_per_s": 50000,
    }


def render(result: dict[str, Any], ui: UI) -> None:
    """One table of operations per sink."""
    rows = [
        [
            r.get("sink", "sqlite"),
            r["op"],
            str(r["n"]),
            str(r.get("p50_us", "-")),
            str(r.get("p99_us", "-")),
            f"{r['per_s']:,}" if "per_s" in r else "-",
        ]
        for r in result["results"]
    ]
    ui.table("trace", ["sink", "op", "n", "p50 us", "p99 us", "records/s"], rows)
    ui.note(
        f"targets: append p50 <= {result['target_append_p50_us']} us; verify >= "
        f"{result['target_verify_per_s']:,} records/s"
    )
