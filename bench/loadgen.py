"""HTTP/1.1 keep-alive load generator on raw asyncio sockets (uvloop if present), run as its own process.

`python bench/loadgen.py --port 8181 --token T --clients 32 --seconds 5 --bodies FILE.jsonl`
prints one JSON object: requests, errors, outcomes, per_s, p50_us, p99_us. Each client is one
connection sending one request at a time (closed loop), cycling through the bodies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path


def build(host: str, port: int, path: str, token: str, bodies: list[bytes]) -> list[bytes]:
    """Pre-built request bytes, one per body."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\n")
    return [f"{head}Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]


async def client(host: str, port: int, reqs: list[bytes], start: int, until: float, warm_until: float,
                 lat: list[float], outcomes: dict[str, int], errors: list[str]) -> None:
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
        length = int(head[k + 15:head.index(b"\r\n", k)])
        body = await reader.readexactly(length)
        t1 = clock()
        if t0 < warm_until:
            continue
        lat.append(t1 - t0)
        if status != b"200":
            errors.append(status.decode())
            continue
        j = body.find(b'"outcome":"')
        o = body[j + 11:body.index(b'"', j + 11)].decode() if j >= 0 else "?"
        outcomes[o] = outcomes.get(o, 0) + 1
    writer.close()


async def run(host: str, port: int, path: str, token: str, bodies: list[bytes], clients: int,
              seconds: float, warmup: float) -> dict[str, object]:
    """Drive ``clients`` connections for ``warmup + seconds``; latency counted after the warm-up."""
    reqs = build(host, port, path, token, bodies)
    lat: list[float] = []
    outcomes: dict[str, int] = {}
    errors: list[str] = []
    now = time.perf_counter()
    warm_until, until = now + warmup, now + warmup + seconds
    await asyncio.gather(*(client(host, port, reqs, c * 7919, until, warm_until, lat, outcomes, errors)
                           for c in range(clients)))
    lat.sort()
    n = len(lat)

    def pct(q: float) -> float:
        return round(lat[min(n - 1, int(q * n))] * 1e6, 1) if n else 0.0

    return {"requests": n, "errors": len(errors), "error_kinds": sorted(set(errors))[:5],
            "outcomes": outcomes, "per_s": round(n / seconds, 1), "p50_us": pct(0.50),
            "p90_us": pct(0.90), "p99_us": pct(0.99), "max_us": pct(1.0), "clients": clients}


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
    a = ap.parse_args(argv)
    bodies = [ln.encode() for ln in Path(a.bodies).read_text("utf-8").splitlines() if ln.strip()]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    out = asyncio.run(run(a.host, a.port, a.path, a.token, bodies, a.clients, a.seconds, a.warmup))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
