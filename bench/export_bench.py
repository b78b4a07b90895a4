"""Engine decision latency with decision-log export off, on (a local JSONL receiver) and on with the
target down: ``python bench/export_bench.py [--n 20000] [--rounds 5] [--json]``.

The three engines decide the same requests under the example policies (policies/, with a mask and
a hash declared for the payment's arguments), interleaved round by round so that machine load hits
all three alike; each figure is the median over rounds of the per-decision mean and p50/p99, and
of the process's CPU time per decision (all threads: the sender's work is in it; other processes
taking the cores are not). The receiver runs in its own process, as a collector would.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
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


#: the JSONL receiver, in its own process (as a collector would be): its CPU is not the engine's
RECEIVER = """
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


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
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    assert receiver.stdout is not None
    port = int(receiver.stdout.readline())
    up = Exporter(JsonlHttpSink(f"http://127.0.0.1:{port}/"), policy, max_queue=100_000)
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
    rounds: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in engines}
    for _ in range(args.rounds):
        for name, e in engines.items():
            cpu = time.process_time()
            s = _run(e, args.n)
            if name == "on":
                # the sender finishes these decisions' records before the next engine's round: its
                # work is counted here (CPU) and does not spill into the others' latencies
                up.flush(60)
            # the process's CPU per decision, every thread (the sender's work included): unlike
            # the wall-clock mean it is not inflated by other processes taking the cores
            cpu_us = (time.process_time() - cpu) / args.n * 1e6
            s.sort()
            rounds[name].append((statistics.fmean(s), s[len(s) // 2], s[int(len(s) * 0.99)], cpu_us))
    up.flush(60)
    # the sender thread's CPU per record: build, mask, encode (what export adds to a busy process);
    # this thread's CPU time, best of 5 runs, averaged over the three requests
    samples = [(validate_request(r), engines["off"].decide(r)) for r in REQUESTS]
    runs = []
    for _ in range(5):
        t = time.thread_time()
        for _ in range(300):
            for req, dec in samples:
                up.masker.encode(build_record(req, dec, 0), policy.masks)
        runs.append((time.thread_time() - t) / (300 * len(samples)))
    sender_us = min(runs) * 1e6
    result: dict[str, Any] = {
        "sender_us_per_record": round(sender_us, 1),
        "n": args.n,
        "rounds": args.rounds,
        "us": {
            k: {
                m: round(statistics.median(r[i] for r in v), 2)
                for i, m in enumerate(("mean", "p50", "p99", "cpu"))
            }
            for k, v in rounds.items()
        },
        "exported": up.stats.exported,
        "dropped_on": up.stats.dropped,
        "dropped_down": down.stats.dropped,
    }
    off = result["us"]["off"]["mean"]
    result["overhead_pct"] = {k: round(100 * (result["us"][k]["mean"] / off - 1), 1) for k in ("on", "down")}
    result["overhead_pct_p50"] = {
        k: round(100 * (result["us"][k]["p50"] / result["us"]["off"]["p50"] - 1), 1) for k in ("on", "down")
    }
    result["overhead_pct_cpu"] = {
        k: round(100 * (result["us"][k]["cpu"] / result["us"]["off"]["cpu"] - 1), 1) for k in ("on", "down")
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result["us"].items():
            print(
                f"export {k:5s} mean {v['mean']:8.2f} us  p50 {v['p50']:8.2f} us  p99 {v['p99']:8.2f} us"
                f"  CPU {v['cpu']:8.2f} us"
            )
        print(f"sender thread: {result['sender_us_per_record']} us of CPU per record (build, mask, JSON)")
        pct = result["overhead_pct"]
        print(f"overhead (mean): on {pct['on']} %, target down {pct['down']} %")
        p50, cpu = result["overhead_pct_p50"], result["overhead_pct_cpu"]
        print(f"overhead (p50): on {p50['on']} %, target down {p50['down']} %")
        print(f"overhead (process CPU per decision): on {cpu['on']} %, target down {cpu['down']} %")
        r = result
        print(f"exported {r['exported']}, dropped {r['dropped_on']} (on), {r['dropped_down']} (down)")
    receiver.terminate()
    receiver.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
