"""Engine decision latency with decision-log export off, on (a local JSONL receiver) and on with the
target down: ``python bench/export_bench.py [--n 20000] [--rounds 5] [--json]``.

The three engines decide the same requests under the example policies (policies/, with a mask and
a hash declared for the payment's arguments), interleaved round by round so that machine load hits
all three alike; each figure is the median over rounds of the per-decision mean and p50/p99.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import charter
from charter.api import check
from charter.engine.engine import Engine
from charter.engine.validate import validate_request
from charter.export import Exporter, JsonlHttpSink
from charter.export.exporter import build_record

ROOT = Path(__file__).resolve().parents[1]
MASKS = "mask args.to\nhash args.body\n"
REQUESTS = [
    {"actor": {"id": "research-agent"}, "action": {"target": "kb.read", "args": {}}},
    {
        "actor": {"id": "comms-agent"},
        "action": {"target": "email.send", "args": {"to": "a@b.c", "body": "hi"}},
    },
    {"actor": {"id": "payments-agent"}, "action": {"target": "payments.transfer", "args": {"amount": 120.0}}},
]


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _policy() -> charter.Policy:
    """policies/ with masks added to its tool catalog (an editor overlay: the files are not touched)."""
    tools = (ROOT / "policies" / "tools.charter").resolve()
    result = check([ROOT / "policies"], overlay={tools: tools.read_text("utf-8") + MASKS})
    assert result.policy is not None and not result.errors, result.errors
    return result.policy


def _run(engine: Engine, n: int) -> list[float]:
    out = []
    reqs = REQUESTS
    for i in range(n):
        t = time.perf_counter_ns()
        engine.decide(reqs[i % len(reqs)])
        out.append((time.perf_counter_ns() - t) / 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure and print the three configurations."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20_000, help="decisions per engine per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    policy = _policy()
    assert policy.masks, "the bench policy declares masks"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    up = Exporter(JsonlHttpSink(f"http://127.0.0.1:{server.server_address[1]}/"), policy, max_queue=100_000)
    down = Exporter(
        JsonlHttpSink("http://127.0.0.1:9/", timeout=0.2), policy, retries=2, backoff_s=0.05, max_queue=10_000
    )
    engines = {
        "off": Engine(policy),
        "on": Engine(policy, observers=[up]),
        "down": Engine(policy, observers=[down]),
    }
    for e in engines.values():
        _run(e, 1000)
    rounds: dict[str, list[tuple[float, float, float]]] = {k: [] for k in engines}
    for _ in range(args.rounds):
        for name, e in engines.items():
            s = _run(e, args.n)
            s.sort()
            rounds[name].append((statistics.fmean(s), s[len(s) // 2], s[int(len(s) * 0.99)]))
    up.flush(60)
    # the sender thread's CPU per record: build, mask, encode (what export adds to a busy process)
    req = validate_request(REQUESTS[1])
    dec = engines["off"].decide(REQUESTS[1])
    t = time.perf_counter()
    for _ in range(2000):
        up.masker.encode(build_record(req, dec, 0), policy.masks)
    sender_us = (time.perf_counter() - t) / 2000 * 1e6
    result: dict[str, Any] = {
        "sender_us_per_record": round(sender_us, 1),
        "n": args.n,
        "rounds": args.rounds,
        "us": {
            k: {m: round(statistics.median(r[i] for r in v), 2) for i, m in enumerate(("mean", "p50", "p99"))}
            for k, v in rounds.items()
        },
        "exported": up.stats.exported,
        "dropped_on": up.stats.dropped,
        "dropped_down": down.stats.dropped,
    }
    off = result["us"]["off"]["mean"]
    result["overhead_pct"] = {k: round(100 * (result["us"][k]["mean"] / off - 1), 1) for k in ("on", "down")}
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result["us"].items():
            print(f"export {k:5s} mean {v['mean']:8.2f} us  p50 {v['p50']:8.2f} us  p99 {v['p99']:8.2f} us")
        print(f"sender thread: {result['sender_us_per_record']} us of CPU per record (build, mask, JSON)")
        pct = result["overhead_pct"]
        print(f"overhead (mean): on {pct['on']} %, target down {pct['down']} %")
        r = result
        print(f"exported {r['exported']}, dropped {r['dropped_on']} (on), {r['dropped_down']} (down)")
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
