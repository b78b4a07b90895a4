"""Instructions per decision under callgrind: `python bench/instr.py [--rules 14] [-n 3000]`.

Wall-clock latency on a shared, loaded machine varies by 2x between runs; instruction counts do
not. This runs the engine bench's workload (warmed up: every request decided once) and then ``n``
decisions inside a ctypes callback, under ``valgrind --tool=callgrind``, and divides the inclusive
instruction count of that callback by ``n`` (the loop's own cost, a few dozen instructions per
decision, is included). Give ``--python`` another interpreter (a venv with an older charter) to
compare two engines on the same workload.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _loop(rules: int, n: int) -> None:
    """Run inside valgrind: build the engine, warm it up, decide ``n`` requests in the callback."""
    sys.path.insert(0, str(ROOT))
    import charter
    from bench.peers.charter_engine import charter_policy_text
    from bench.workload import build_requests, build_world

    world = build_world(rules)
    engine = charter.Engine(charter.loads(charter_policy_text(world)))
    actors = {
        name: {"id": name, "roles": [a["role"]], "attributes": {"clearance": a["clearance"]}}
        for name, a in world.agents.items()
    }
    reqs = [
        {
            "actor": actors[r["agent"]],
            "action": {"kind": "call", "target": r["tool"], "args": {"amount": r["amount"]}},
            "context": {"env": r["env"]},
        }
        for r in build_requests(world)
    ]
    decide = engine.decide
    for r in reqs:
        decide(r)
    m = len(reqs)

    def loop(a: int, b: int) -> int:
        for i in range(n):
            decide(reqs[i % m])
        return 0

    callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(loop)
    one = (ctypes.c_int * 1)(1)
    key = ctypes.c_int(1)
    ctypes.CDLL(None).bsearch(ctypes.byref(key), one, 1, 4, callback)  # calls loop once


def main(argv: list[str] | None = None) -> int:
    """Run the loop under callgrind and print the instructions per decision."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rules", type=int, default=14)
    ap.add_argument("-n", type=int, default=3000, help="decisions counted")
    ap.add_argument("--python", default=sys.executable, help="interpreter whose charter is measured")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.inner:
        _loop(args.rules, args.n)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", args.python, __file__]
        subprocess.run(
            [*cmd, "--inner", "--rules", str(args.rules), "-n", str(args.n)], check=True, capture_output=True
        )
        text = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    for line in text.splitlines():
        if "_CallPythonObject" in line or "closure_fcn" in line:
            total = int(line.split()[0].replace(",", ""))
            print(f"rules={args.rules} instructions/decision={total // args.n}")
            return 0
    print("the callback was not found in callgrind's output", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
