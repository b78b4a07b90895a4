"""Fairness under hostile load: a victim client's decide latency alone and while hostile clients loop.

    python bench/hostile_bench.py [--hostile 2] [--seconds 5] [--json]

Starts `charter serve` (memory store, two bearer tokens) on a free port with the hostile rules of
tests/adversarial/test_evaluation_budget.py, then measures, from separate processes on kept-alive
connections: the victim's small decide requests alone, and again while N hostile clients (one token,
as one attacker would have) loop the largest request the limits admit (~300 KB). Prints the victim's
p50/p99, the hostile answers' p50 and their status codes.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.adversarial.test_evaluation_budget import HOSTILE_RULES, POLICY, _forbid, _request  # noqa: E402

VICTIM_TOKEN = "victim-token-0123456789abcdef"
HOSTILE_TOKEN = "hostile-token-0123456789abcdef"
VICTIM = {"actor": {"id": "a"}, "action": {"kind": "call", "target": "t.x", "args": {"items": [1, 3]}}}


def policy_text() -> str:
    """The hostile policy: every hostile rule of the evaluation-budget attack suite at once."""
    return POLICY + "".join(_forbid(n, c) for n, c in HOSTILE_RULES.items())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(store: str = "memory://", extra: tuple[str, ...] = ()) -> Iterator[int]:
    """`charter serve` on a free port with the hostile policy; yields the port."""
    with tempfile.TemporaryDirectory() as tmp:
        pol = Path(tmp, "hostile.charter")
        pol.write_text(policy_text())
        tokens = Path(tmp, "tokens.yaml")
        tokens.write_text(
            "tokens:\n"
            f"  - {{name: victim, token: {VICTIM_TOKEN}, roles: [orchestrator]}}\n"
            f"  - {{name: hostile, token: {HOSTILE_TOKEN}, roles: [orchestrator]}}\n"
        )
        port = free_port()
        cmd = [sys.executable, "-m", "charter", "serve", str(pol), "--port", str(port)]
        cmd += ["--tokens", str(tokens), "--log-level", "warning", "--poll", "0", "--store", store, *extra]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(OSError):
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    c.request("GET", "/livez")
                    if c.getresponse().status == 200:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"charter serve did not start: {err[-2000:]}")
                time.sleep(0.1)
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _post(conn: http.client.HTTPConnection, body: bytes, token: str) -> int:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    conn.request("POST", "/v1/decide", body, headers)
    r = conn.getresponse()
    r.read()
    return r.status


def _hostile(port: int, stop: Any, ready: Any, out: Any) -> None:
    body = json.dumps(_request()).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times: list[float] = []
    codes: Counter[int] = Counter()
    _post(conn, body, HOSTILE_TOKEN)
    ready.put(True)
    while not stop.is_set():
        t0 = time.perf_counter()
        codes[_post(conn, body, HOSTILE_TOKEN)] += 1
        times.append(time.perf_counter() - t0)
        if codes.get(429):  # asked to back off: as a well-behaved client would, briefly
            time.sleep(0.001)
    out.put((times, dict(codes)))


def victim(port: int, seconds: float) -> tuple[list[float], Counter[int]]:
    """Small decide requests in a loop for ``seconds``: latencies (s) and status codes."""
    body = json.dumps(VICTIM).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(20):  # warm up the connection and the server
        _post(conn, body, VICTIM_TOKEN)
    times, codes = [], Counter[int]()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        codes[_post(conn, body, VICTIM_TOKEN)] += 1
        times.append(time.perf_counter() - t0)
        time.sleep(0.002)  # a steady caller, not a flood
    return times, codes


def pct(xs: list[float], q: float) -> float:
    """The q-quantile of xs in milliseconds."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    return 1000 * s[min(len(s) - 1, int(q * len(s)))]


def measure(port: int, hostile: int, seconds: float) -> dict[str, Any]:
    """Victim alone, then victim while ``hostile`` processes loop the largest admitted request."""
    alone, _ = victim(port, seconds)
    ctx = mp.get_context("spawn")
    stop, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_hostile, args=(port, stop, ready, out)) for _ in range(hostile)]
    for p in procs:
        p.start()
    for _ in procs:  # every hostile loop is running
        ready.get(timeout=120)
    loaded, vcodes = victim(port, seconds)
    stop.set()
    htimes: list[float] = []
    hcodes: Counter[int] = Counter()
    for _ in procs:
        t, c = out.get(timeout=120)
        htimes += t
        hcodes.update({int(k): v for k, v in c.items()})
    for p in procs:
        p.join(30)
    return {
        "victim_alone_p50_ms": round(pct(alone, 0.5), 2),
        "victim_alone_p99_ms": round(pct(alone, 0.99), 2),
        "victim_loaded_p50_ms": round(pct(loaded, 0.5), 2),
        "victim_loaded_p99_ms": round(pct(loaded, 0.99), 2),
        "victim_loaded_n": len(loaded),
        "victim_loaded_codes": dict(vcodes),
        "hostile_clients": hostile,
        "hostile_p50_ms": round(pct(htimes, 0.5), 2),
        "hostile_n": len(htimes),
        "hostile_codes": dict(hcodes),
        "request_bytes": len(json.dumps(_request()).encode()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hostile", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--store", default="memory://", help="state store URL (default memory://)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT / "src"))
    with serve(args.store) as port:
        res = measure(port, args.hostile, args.seconds)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:24} {v}")


if __name__ == "__main__":
    main()
