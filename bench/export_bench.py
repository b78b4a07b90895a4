"""Engine decision latency with decision-log export off, on (a local JSONL receiver) and on with the
target down: ``python bench/export_bench.py [--n 20000] [--rounds 5] [--json]``; with ``--mode
shipper``, the same with a trace log written and the export done by ``charter trace ship`` in its
own process (trace only, trace + shipper, trace + shipper whose target is down).

The three engines decide the same requests under the example policies (policies/, with a mask and
a hash declared for the payment's arguments), interleaved round by round so that machine load hits
all three alike; each figure is the median over rounds of the per-decision mean and p50/p99, and
of the process's CPU time per decision (all threads: the sender's work is in it; other processes
taking the cores are not). The receiver runs in its own process, as a collector would.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import charter
from charter.api import check
from charter.engine.engine import Engine
from charter.engine.validate import validate_request
from charter.export import Exporter, JsonlHttpSink
from charter.export.exporter import build_record
from charter.trace import TraceLog

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
    ap.add_argument(
        "--mode",
        choices=["inprocess", "shipper"],
        default="inprocess",
        help="in-process Exporter or trace shipper",
    )
    ap.add_argument("--nice", type=int, default=0, help="shipper mode: run the shippers under nice -n N")
    args = ap.parse_args(argv)
    if args.mode == "shipper":
        return shipper_bench(args)
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


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _last_seq(trace: Path) -> int:
    db = sqlite3.connect(f"file:{trace}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT coalesce(max(seq), 0) FROM trace").fetchone()[0])
    finally:
        db.close()


def _cursor_seq(cursor: Path) -> int:
    try:
        return int(json.loads(cursor.read_text())["seq"])
    except (OSError, ValueError, KeyError):
        return 0


def shipper_bench(args: argparse.Namespace) -> int:
    """Trace on (SQLite), vs trace on with ``charter trace ship --follow`` shipping it from another
    process to a JSONL receiver, vs the same with the target down; rounds interleaved, and after
    each round of the shipped engine the bench waits until the shipper has caught up (its work
    on those records does not spill into the next round). Each engine has its own trace file."""
    policy = _policy()
    work = Path(tempfile.mkdtemp(prefix="charter-ship-bench-"))
    shutil.copytree(ROOT / "policies", work / "policies")
    tools = work / "policies" / "tools.charter"
    tools.write_text(tools.read_text("utf-8") + MASKS, "utf-8")
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    assert receiver.stdout is not None
    port = int(receiver.stdout.readline())
    logs = {k: TraceLog(work / f"{k}.db") for k in ("trace", "ship", "down")}
    engines = {k: Engine(policy, trace=log) for k, log in logs.items()}
    for e in engines.values():
        _run(e, 500)
    for log in logs.values():
        log.flush()

    def ship(name: str, to: str) -> subprocess.Popen[bytes]:
        cmd = ["nice", "-n", str(args.nice)] if args.nice else []
        cmd += [sys.executable, "-m", "charter", "trace", "ship", "--trace", str(work / f"{name}.db")]
        cmd += ["--to", to, "--policy", str(work / "policies"), "--cursor", str(work / f"{name}.cursor")]
        cmd += ["--follow", "--poll", "0.2", "--format", "json"]
        # the shipper whose target is down warns on stderr (every 30 s): not the bench's output
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    shippers = {
        "ship": ship("ship", f"jsonl:http://127.0.0.1:{port}/"),
        "down": ship("down", "jsonl:http://127.0.0.1:9/"),
    }
    rounds: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in engines}
    ship_cpu = 0.0
    shipped_n = 0
    try:
        for _ in range(args.rounds):
            for name, e in engines.items():
                if name == "ship":  # the shipper has caught up before its round starts
                    _wait_caught_up(logs["ship"], work)
                    c0 = _proc_cpu_s(shippers["ship"].pid)
                cpu = time.process_time()
                s = _run(e, args.n)
                # the trace writer's work on this round's decisions is counted in this round
                logs[name].flush()
                cpu_us = (time.process_time() - cpu) / args.n * 1e6
                if name == "ship":  # the shipper's work on them, before the next round starts
                    _wait_caught_up(logs["ship"], work)
                    ship_cpu += _proc_cpu_s(shippers["ship"].pid) - c0
                    shipped_n += args.n
                s.sort()
                rounds[name].append((statistics.fmean(s), s[len(s) // 2], s[int(len(s) * 0.99)], cpu_us))
    finally:
        stats = {}
        for name, p in shippers.items():
            p.terminate()
            out, _ = p.communicate(30)
            stats[name] = json.loads(out) if out else {}
        for log in logs.values():
            log.close()
        receiver.terminate()
        receiver.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    us = {
        k: {
            m: round(statistics.median(r[i] for r in v), 2)
            for i, m in enumerate(("mean", "p50", "p99", "cpu"))
        }
        for k, v in rounds.items()
    }
    base = us["trace"]
    result: dict[str, Any] = {
        "mode": "shipper",
        "nice": args.nice,
        "n": args.n,
        "rounds": args.rounds,
        "us": us,
        "overhead_pct": {
            m: {k: round(100 * (us[k][m] / base[m] - 1), 1) for k in ("ship", "down")}
            for m in ("mean", "p50", "cpu")
        },
        "shipper_cpu_us_per_record": round(ship_cpu / max(shipped_n, 1) * 1e6, 1),
        "shipped": stats["ship"].get("shipped"),
        "retries_down": stats["down"].get("retries"),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in us.items():
            print(
                f"{k:5s} mean {v['mean']:8.2f} us  p50 {v['p50']:8.2f} us  p99 {v['p99']:8.2f} us"
                f"  decide-process CPU {v['cpu']:8.2f} us"
            )
        for m, v in result["overhead_pct"].items():
            print(f"overhead ({m}): shipper running {v['ship']} %, its target down {v['down']} %")
        print(f"shipper process: {result['shipper_cpu_us_per_record']} us of CPU per record")
        print(f"shipped {result['shipped']}; retries while down {result['retries_down']}")
    return 0


def _wait_caught_up(log: TraceLog, work: Path, timeout: float = 120.0) -> None:
    log.flush()
    want = _last_seq(work / "ship.db")
    end = time.monotonic() + timeout
    while _cursor_seq(work / "ship.cursor") < want:
        if time.monotonic() > end:
            raise RuntimeError(f"the shipper did not catch up with record {want}")
        time.sleep(0.02)


if __name__ == "__main__":
    sys.exit(main())
