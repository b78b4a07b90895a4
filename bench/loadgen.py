"""HTTP/1.1 keep-alive load generator: `wrk` when installed, else raw asyncio sockets (uvloop if present).

`python bench/loadgen.py --port 8181 --token T --clients 32 --seconds 5 --bodies FILE.jsonl`
prints one JSON object: generator, requests, errors, per_s, p50_us, p99_us (and outcomes with the
Python generator; client and, given --server-pid, server CPU per request). Each client is one
connection sending one request at a time (closed loop), cycling through the bodies. `--tool`
picks the generator (auto: wrk if on PATH, else python); the load generator shares the machine's
cores with the server, so a C generator leaves the server more of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build(host: str, port: int, path: str, token: str, bodies: list[bytes]) -> list[bytes]:
    """Pre-built request bytes, one per body."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
    )
    return [f"{head}Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]


async def client(
    host: str,
    port: int,
    reqs: list[bytes],
    start: int,
    until: float,
    warm_until: float,
    lat: list[float],
    outcomes: dict[str, int],
    errors: list[str],
) -> None:
    """One keep-alive connection, one request in flight at a time."""
    reader, writer = await asyncio.open_connection(host, port)
    i, n = start, len(reqs)
    clock = time.perf_counter
    while True:
        t0 = clock()
        if t0 >= until:
            break
        writer.write(reqs[i % n])
        i += 1
        head = await reader.readuntil(b"\r\n\r\n")
        status = head[9:12]
        k = head.lower().find(b"content-length:")
        if k < 0:
            errors.append("no content-length")
            break
        length = int(head[k + 15 : head.index(b"\r\n", k)])
        body = await reader.readexactly(length)
        t1 = clock()
        if t0 < warm_until:
            continue
        lat.append(t1 - t0)
        if status != b"200":
            errors.append(status.decode())
            continue
        j = body.find(b'"outcome":"')
        o = body[j + 11 : body.index(b'"', j + 11)].decode() if j >= 0 else "?"
        outcomes[o] = outcomes.get(o, 0) + 1
    writer.close()


def proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of ``pid`` and its children (uvicorn workers); None off Linux."""
    total = 0.0
    try:
        pids = [pid]
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
        for p in pids:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return total


def _cpu_mark(server_pid: int | None) -> tuple[float, float | None]:
    return time.process_time(), proc_cpu(server_pid) if server_pid else None


def _per_req(a: float | None, b: float | None, n: int) -> float | None:
    return round((b - a) / n * 1e6, 1) if a is not None and b is not None and n else None


async def run(
    host: str,
    port: int,
    path: str,
    token: str,
    bodies: list[bytes],
    clients: int,
    seconds: float,
    warmup: float,
    server_pid: int | None = None,
) -> dict[str, object]:
    """Drive ``clients`` connections for ``warmup + seconds``; latency counted after the warm-up."""
    reqs = build(host, port, path, token, bodies)
    lat: list[float] = []
    outcomes: dict[str, int] = {}
    errors: list[str] = []
    now = time.perf_counter()
    warm_until, until = now + warmup, now + warmup + seconds
    marks: list[tuple[float, float | None]] = []
    meter = asyncio.get_running_loop().call_later(warmup, lambda: marks.append(_cpu_mark(server_pid)))
    await asyncio.gather(
        *(
            client(host, port, reqs, c * 7919, until, warm_until, lat, outcomes, errors)
            for c in range(clients)
        )
    )
    meter.cancel()
    end = _cpu_mark(server_pid)
    lat.sort()
    n = len(lat)

    def pct(q: float) -> float:
        return round(lat[min(n - 1, int(q * n))] * 1e6, 1) if n else 0.0

    start = marks[0] if marks else end
    return {
        "generator": "python",
        "requests": n,
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
        "outcomes": outcomes,
        "per_s": round(n / seconds, 1),
        "p50_us": pct(0.50),
        "p90_us": pct(0.90),
        "p99_us": pct(0.99),
        "max_us": pct(1.0),
        "clients": clients,
        "client_cpu_us": _per_req(start[0], end[0], n),
        "server_cpu_us": _per_req(start[1], end[1], n),
    }


_WRK_LUA = """
local reqs, i = {}, 0
for line in io.lines([==[%(bodies)s]==]) do
  if #line > 0 then
    reqs[#reqs + 1] = wrk.format("POST", [==[%(path)s]==], {
      ["Host"] = [==[%(host)s]==], ["Authorization"] = [==[Bearer %(token)s]==],
      ["Content-Type"] = "application/json"}, line)
  end
end
request = function()
  i = i + 1
  return reqs[(i %% #reqs) + 1]
end
done = function(summary, latency, requests)
  local e, f = summary.errors, io.open([==[%(out)s]==], "w")
  f:write(string.format('{"requests": %%d, "duration_us": %%d, "status_errors": %%d, "socket_errors": %%d, '
    .. '"p50_us": %%.1f, "p90_us": %%.1f, "p99_us": %%.1f, "max_us": %%.1f}', summary.requests,
    summary.duration, e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max))
  f:close()
end
"""


def wrk_version(exe: str) -> str:
    """`wrk 4.1.0` or just `wrk` when the version line is not understood."""
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    m = re.search(r"\b(\d+\.\d+(?:\.\d+)?)", out.stdout + out.stderr)
    return f"wrk {m.group(1)}" if m else "wrk"


def run_wrk(
    exe: str,
    host: str,
    port: int,
    path: str,
    token: str,
    bodies_file: str,
    clients: int,
    seconds: float,
    warmup: float,
    server_pid: int | None = None,
) -> dict[str, object]:
    """wrk -t1 -cN with a Lua script cycling through the bodies; a warm-up run first, not counted."""
    with tempfile.TemporaryDirectory(prefix="charter-wrk-") as tmp:
        out = Path(tmp) / "out.json"
        script = Path(tmp) / "bodies.lua"
        script.write_text(
            _WRK_LUA
            % {
                "bodies": str(Path(bodies_file).resolve()),
                "path": path,
                "host": f"{host}:{port}",
                "token": token,
                "out": str(out),
            },
            "utf-8",
        )
        url = f"http://{host}:{port}{path}"

        def go(secs: float) -> None:
            subprocess.run(
                [
                    exe,
                    "-t1",
                    f"-c{clients}",
                    f"-d{max(1, round(secs))}s",
                    "--timeout",
                    "10s",
                    "-s",
                    str(script),
                    url,
                ],
                capture_output=True,
                check=True,
                timeout=secs + 60,
            )

        if warmup > 0:
            go(warmup)
        c0, s0 = resource.getrusage(resource.RUSAGE_CHILDREN), proc_cpu(server_pid) if server_pid else None
        go(seconds)
        c1, s1 = resource.getrusage(resource.RUSAGE_CHILDREN), proc_cpu(server_pid) if server_pid else None
        r = json.loads(out.read_text("utf-8"))
    n = int(r["requests"])
    wall = r["duration_us"] / 1e6
    client = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    return {
        "generator": wrk_version(exe),
        "requests": n,
        "errors": r["status_errors"] + r["socket_errors"],
        "per_s": round(n / wall, 1) if wall else 0.0,
        "p50_us": r["p50_us"],
        "p90_us": r["p90_us"],
        "p99_us": r["p99_us"],
        "max_us": r["max_us"],
        "clients": clients,
        "client_cpu_us": _per_req(0.0, client, n),
        "server_cpu_us": _per_req(s0, s1, n),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and print the result as JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/v1/decide")
    ap.add_argument("--token", default="")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--bodies", required=True, help="JSON lines, one request body per line")
    ap.add_argument(
        "--tool",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="auto: wrk if on PATH, else the Python generator",
    )
    ap.add_argument("--server-pid", type=int, default=None, help="also report the server's CPU per request")
    a = ap.parse_args(argv)
    exe = shutil.which("wrk") if a.tool in ("auto", "wrk") else None
    if a.tool == "wrk" and exe is None:
        ap.error("--tool wrk: wrk is not on PATH")
    if exe is not None:
        out = run_wrk(
            exe, a.host, a.port, a.path, a.token, a.bodies, a.clients, a.seconds, a.warmup, a.server_pid
        )
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
        return 0
    bodies = [ln.encode() for ln in Path(a.bodies).read_text("utf-8").splitlines() if ln.strip()]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    out = asyncio.run(
        run(a.host, a.port, a.path, a.token, bodies, a.clients, a.seconds, a.warmup, a.server_pid)
    )
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
