"""Gateway overhead: p50/p99 of a tools/call direct to a local MCP server vs through `charter gateway`.

    python bench/gateway_bench.py [--calls 2000] [--transport stdio|http|both] [--no-fast] [--json]

stdio: the mcp SDK's client launches the server (direct) or `charter gateway` (which launches the
same server). http: the server and the gateway listen on local ports (uvicorn); the client keeps
one session. Direct and gateway calls are interleaved in blocks of 20 (a loaded machine slows
both alike). The added latency is the difference of the two distributions' percentiles; the
gateway's CPU per call is read from /proc. ``--no-fast``: the gateway's SDK path only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ROOT / "tests" / "integrations" / "gateway_servers.py"
TOKEN = "bench-agent-token-0123456789"

POLICY = """
policy gateway-bench
agents from "agents.yaml"
roles bench
tool kb.echo { arg value: string }
permit echo {
  actor role bench
  action call kb.echo
  reason "The bench agent may echo."
}
"""
AGENTS = "agents:\n  - {id: bench-agent, roles: [bench]}\ngroups: {}\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _setup(tmp: Path, upstream: dict[str, Any]) -> dict[str, Path]:
    pol = tmp / "policy"
    pol.mkdir(exist_ok=True)
    (pol / "agents.yaml").write_text(AGENTS, "utf-8")
    (pol / "bench.charter").write_text(POLICY, "utf-8")
    tokens = tmp / "tokens.yaml"
    tokens.write_text(f"tokens:\n  - {{name: bench-agent, role: orchestrator, token: {TOKEN}}}\n", "utf-8")
    cfg = tmp / "gateway.yaml"
    cfg.write_text(json.dumps({"servers": [{"name": "kb", "prefix": "kb.", **upstream}]}), "utf-8")
    return {"policy": pol, "tokens": tokens, "config": cfg}


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextlib.contextmanager
def _proc(*argv: str) -> Any:
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield p
    finally:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()


@contextlib.asynccontextmanager
async def _client(target: Any, token: str | None = None) -> AsyncIterator[Any]:
    from mcp import Client

    if isinstance(target, str) and token:
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        target = streamable_http_client(
            target, http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        )
    async with Client(target, cache=None) as c:
        yield c


async def _measure_pair(
    direct: Any, gateway: Any, calls: int, token: str | None = None, tool: str = "echo"
) -> tuple[list[float], list[float]]:
    """Round-trip times (µs) of ``calls`` calls direct and through the gateway, interleaved in
    blocks of 20 so that the load of a shared machine hits both sides alike."""
    async with _client(direct) as d, _client(gateway, token) as g:
        for c in (d, g):
            for _ in range(min(200, calls)):  # warm-up
                await c.call_tool(tool, {"value": "x"})
        out: tuple[list[float], list[float]] = ([], [])
        cpu = 0.0
        for block in range(0, calls, 20):
            for side, c in enumerate((d, g)):
                cpu0 = _gateway_cpu_s() if side else 0.0
                for _ in range(min(20, calls - block)):
                    t0 = time.perf_counter()
                    r = await c.call_tool(tool, {"value": "x"})
                    out[side].append((time.perf_counter() - t0) * 1e6)
                    if r.is_error:
                        raise RuntimeError(f"the call failed: {r.content}")
                if side:
                    cpu += _gateway_cpu_s() - cpu0
        _CPU.append(cpu / calls * 1e6)
        return out


#: the gateway's CPU time per call of the last measurement (µs; 0 when direct)
_CPU: list[float] = []


def _gateway_cpu_s() -> float:
    """CPU seconds (user + system) used so far by the `charter gateway` processes under this one."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"gateway" not in cmd or b"charter" not in cmd:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _pct(xs: list[float], p: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(p * len(ys)))]


def _summary(direct: list[float], gw: list[float]) -> dict[str, float]:
    return {
        "direct_p50_us": round(statistics.median(direct), 1),
        "direct_p99_us": round(_pct(direct, 0.99), 1),
        "gateway_p50_us": round(statistics.median(gw), 1),
        "gateway_p99_us": round(_pct(gw, 0.99), 1),
        "added_p50_us": round(statistics.median(gw) - statistics.median(direct), 1),
        "added_p99_us": round(_pct(gw, 0.99) - _pct(direct, 0.99), 1),
        "gateway_cpu_us_per_call": round(_CPU[-1], 1) if _CPU else 0.0,
    }


async def bench_stdio(calls: int, tmp: Path, extra: tuple[str, ...] = ()) -> dict[str, float]:
    """Direct stdio server vs `charter gateway --transport stdio` in front of it."""
    from mcp import StdioServerParameters

    server = [sys.executable, str(SERVERS), "kb", "stdio"]
    paths = _setup(tmp, {"command": server})
    env = {**os.environ, "CHARTER_TOKEN": TOKEN}
    gw_params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m", "charter", "gateway", "--config", str(paths["config"]), "--policy", str(paths["policy"]),
            "--tokens", str(paths["tokens"]), *extra,
        ],
        env=env,
    )  # fmt: skip
    direct = StdioServerParameters(command=server[0], args=server[1:])
    return _summary(*await _measure_pair(direct, gw_params, calls))


async def bench_http(calls: int, tmp: Path, extra: tuple[str, ...] = ()) -> dict[str, float]:
    """Direct Streamable HTTP server vs `charter gateway --transport http` in front of it."""
    sport, gport = _free_port(), _free_port()
    url = f"http://127.0.0.1:{sport}/mcp"
    paths = _setup(tmp, {"url": url})
    with _proc(sys.executable, str(SERVERS), "kb", "http", str(sport)):
        _wait_port(sport)
        with _proc(
            sys.executable, "-m", "charter", "gateway", "--transport", "http", "--port", str(gport),
            "--config", str(paths["config"]), "--policy", str(paths["policy"]),
            "--tokens", str(paths["tokens"]), *extra,
        ):  # fmt: skip
            _wait_port(gport)
            return _summary(*await _measure_pair(url, f"http://127.0.0.1:{gport}/mcp", calls, TOKEN))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table (or JSON)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--transport", choices=["stdio", "http", "both"], default="both")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-fast", action="store_true", help="the gateway without its fast path (SDK only)")
    a = ap.parse_args(argv)
    extra = ("--no-fast",) if a.no_fast else ()
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as d:
        if a.transport in ("stdio", "both"):
            out["stdio"] = asyncio.run(bench_stdio(a.calls, Path(d), extra))
        if a.transport in ("http", "both"):
            out["http"] = asyncio.run(bench_http(a.calls, Path(d), extra))
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"{'transport':<10}{'direct p50':>12}{'gateway p50':>13}{'added p50':>11}{'added p99':>11}  (µs)"
        )
        for k, v in out.items():
            print(
                f"{k:<10}{v['direct_p50_us']:>12}{v['gateway_p50_us']:>13}{v['added_p50_us']:>11}"
                f"{v['added_p99_us']:>11}{v['gateway_cpu_us_per_call']:>13}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
