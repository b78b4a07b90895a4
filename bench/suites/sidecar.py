"""sidecar suite: decisions over HTTP/1.1 keep-alive (32 clients) vs the in-process engine, same run."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.suites import Options
from bench.ui import UI

DESCRIPTION = "charter serve over HTTP/1.1 keep-alive (32 clients, separate load process) vs in-process"
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "bench-token-" + "0" * 24
CLIENTS = 32

STATELESS = """
policy bench-sidecar
roles research, guest
tool search { }
tool fetch { }
permit research {
  actor role research
  action call search, fetch
  when args.q != "forbidden"
  reason "Research agents may search and fetch."
}
forbid no-secrets {
  action call fetch
  when args.q == "secrets"
  reason "No fetching secrets."
}
"""
BUDGET = (
    STATELESS
    + """
units USD
budget per-agent {
  scope agent
  action call search
  limit 1000000000 USD
}
"""
)


def _bodies() -> list[dict[str, Any]]:
    out = []
    for i in range(64):
        tool = "search" if i % 2 == 0 else "fetch"
        q = "secrets" if i % 8 == 3 else f"topic {i}"
        roles = ["research"] if i % 16 != 5 else ["guest"]
        out.append(
            {
                "actor": {"id": f"agent-{i % 16}", "roles": roles},
                "action": {"kind": "call", "target": tool, "args": {"q": q}},
                "cost": {"USD": 0.01} if tool == "search" else {},
            }
        )
    return out


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def _serve(policy: Path, store: str, log: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], int]:
    port = _port()
    env = {
        **os.environ,
        "CHARTER_TOKENS": json.dumps({"tokens": [{"name": "bench", "role": "orchestrator", "token": TOKEN}]}),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "charter",
            "serve",
            str(policy),
            "--store",
            store,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--poll",
            "0",
            "--workers",
            str(workers),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    import http.client

    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(log.read_text()[-1500:])
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("charter serve did not become ready")


def _http(
    policy: Path, store: str, bodies: Path, seconds: float, tmp: Path, tool: str, workers: int = 1
) -> dict[str, Any]:
    proc, port = _serve(policy, store, tmp / f"serve-{port_tag()}.log", workers)
    try:
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "loadgen.py"),
                "--port",
                str(port),
                "--token",
                TOKEN,
                "--clients",
                str(CLIENTS),
                "--seconds",
                str(seconds),
                "--warmup",
                "1",
                "--bodies",
                str(bodies),
                "--tool",
                tool,
                "--server-pid",
                str(proc.pid),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=True,
        )
        return {"workers": workers, **json.loads(out.stdout)}
    finally:
        proc.terminate()
        proc.wait(10)


def port_tag() -> str:
    """A unique tag for log names."""
    return uuid.uuid4().hex[:6]


def _inprocess(text: str, store_url: str, bodies: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    import charter
    from charter.state import open_store

    store = open_store(store_url)
    try:
        engine = charter.Engine(charter.loads(text), store=store)
        for b in bodies * 20:
            engine.decide(b)
        lat: list[float] = []
        clock = time.perf_counter
        end = clock() + seconds
        i = 0
        while clock() < end:
            t0 = clock()
            engine.decide(bodies[i % len(bodies)])
            lat.append(clock() - t0)
            i += 1
    finally:
        store.close()
    lat.sort()
    n = len(lat)
    return {
        "requests": n,
        "per_s": round(n / sum(lat), 1),
        "p50_us": round(lat[n // 2] * 1e6, 1),
        "p99_us": round(lat[int(n * 0.99)] * 1e6, 1),
        "clients": 1,
        "errors": 0,
        "workers": None,
    }


def run(opts: Options, ui: UI) -> dict[str, Any]:
    """Stateless on memory://, budget on Redis: sidecar (HTTP) and in-process, same run; stateless
    also with two uvicorn workers. Load from wrk when installed ($CHARTER_BENCH_LOADGEN=python|wrk
    to choose), else bench/loadgen.py's Python generator."""
    seconds = 2.0 if opts.quick else 6.0
    tool = os.environ.get("CHARTER_BENCH_LOADGEN", "auto")
    tmp = Path(tempfile.mkdtemp(prefix="charter-bench-sidecar-"))
    bodies = _bodies()
    bfile = tmp / "bodies.jsonl"
    bfile.write_text("\n".join(json.dumps(b) for b in bodies) + "\n", "utf-8")
    prefix = f"charter-bench-{uuid.uuid4().hex[:8]}"
    cases = [("stateless", STATELESS, "memory://")]
    notes: list[str] = []
    if _redis_up():
        cases.append(("budget", BUDGET, f"redis://127.0.0.1:6379/0?prefix={prefix}"))
    else:
        notes.append("Redis not reachable: the budget case was skipped")
    results: list[dict[str, Any]] = []
    load_start = os.getloadavg()
    with ui.progress(len(cases) * 2 + 1) as prog:
        for name, text, store in cases:
            pdir = tmp / name
            pdir.mkdir()
            (pdir / "policy.charter").write_text(text, "utf-8")
            prog.step(f"{name}: sidecar")
            r = _http(pdir, store, bfile, seconds, tmp, tool)
            results.append({"engine": "charter-sidecar", "policy": name, "store": store.split("?")[0], **r})
            prog.step(f"{name}: in-process")
            r = _inprocess(text, store, bodies, min(seconds, 3.0))
            results.append({"engine": "charter", "policy": name, "store": store.split("?")[0], **r})
            if name == "stateless":
                prog.step("stateless: sidecar, 2 workers")
                r = _http(pdir, store, bfile, seconds, tmp, tool, workers=2)
                results.append({"engine": "charter-sidecar", "policy": name, "store": store, **r})
    gens = sorted({str(r["generator"]) for r in results if r.get("generator")})
    notes.insert(
        0,
        f"load generator: {', '.join(gens) or '?'} in its own process ({CLIENTS} keep-alive "
        "connections, one request in flight each, closed loop); the server is `charter serve` "
        "(uvicorn, httptools, uvloop); both share the machine's cores",
    )
    if any(store.startswith("redis") for _, _, store in cases):
        import redis

        rc = redis.Redis()
        keys = list(rc.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            rc.delete(*keys)
        rc.close()
    if opts.quick:
        notes.append("--quick: 2 s per measurement; numbers are indicative only")
    return {
        "suite": "sidecar",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "quick": opts.quick,
        "load_avg": {
            "start": [round(x, 2) for x in load_start],
            "end": [round(x, 2) for x in os.getloadavg()],
        },
        "targets": {"per_s": 4000, "p99_us": 10000, "policy": "stateless"},
        "results": results,
        "notes": notes,
    }


def render(result: dict[str, Any], ui: UI) -> None:
    """One table: engine, policy, store, workers, clients, decisions/s, p50, p99, CPU per decision."""
    ui.note(
        f"suite sidecar  {result['date']}  python {result['python']}  {result['cpus']} cpus  "
        f"load average at start {result['load_avg']['start']}, end {result['load_avg']['end']}"
    )

    def us(v: Any) -> str:
        return "-" if v is None else f"{v:,.0f}"

    rows = [
        [
            r["engine"],
            r["policy"],
            r["store"],
            us(r.get("workers")),
            str(r["clients"]),
            f"{r['per_s']:,.0f}",
            f"{r['p50_us']:,.0f}",
            f"{r['p99_us']:,.0f}",
            str(r.get("errors", 0)),
            us(r.get("server_cpu_us")),
            us(r.get("client_cpu_us")),
        ]
        for r in result["results"]
    ]
    ui.table(
        "sidecar vs in-process",
        [
            "engine",
            "policy",
            "store",
            "workers",
            "clients",
            "decisions/s",
            "p50 us",
            "p99 us",
            "errors",
            "server cpu us/req",
            "load cpu us/req",
        ],
        rows,
    )
    for n in result["notes"]:
        ui.note(n)
