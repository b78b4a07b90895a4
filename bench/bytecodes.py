"""Bytecodes per decision, by function and line: `python bench/bytecodes.py [--rules 14] [--top 30]`.

A profile that the load on a shared machine does not change: the interpreter's own count of the
bytecodes each function runs (``sys.settrace`` with opcode events) over the engine bench's
workload, warmed up as ``bench/instr.py`` warms it. Bytecodes are not instructions (a dict
built or a frame pushed costs more than a jump), but where they go shows where the decide
pipeline's interpreted work is; ``bench/instr.py`` gives the instruction total. ``--outcome``
keeps only the requests decided that way (allow, deny, require_approval).
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    """Decide the workload under an opcode tracer and print the counts per decision."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rules", type=int, default=14)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("-n", type=int, default=500, help="decisions counted")
    ap.add_argument("--outcome", default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import charter
    from bench.peers.charter_engine import charter_policy_text
    from bench.workload import build_requests, build_world

    world = build_world(args.rules)
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
    if args.outcome:
        reqs = [r for r in reqs if engine.decide(r).outcome.value == args.outcome]
    for r in reqs:
        engine.decide(r)
    n = min(args.n, len(reqs))
    by_fn: collections.Counter[tuple[str, str]] = collections.Counter()
    by_line: collections.Counter[tuple[str, str, int]] = collections.Counter()

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            code = frame.f_code
            where = code.co_filename.rsplit("/", 1)[-1]
            by_fn[(where, code.co_name)] += 1
            by_line[(where, code.co_name, frame.f_lineno)] += 1
        return trace

    decide = engine.decide
    sys.settrace(trace)
    try:
        for r in reqs[:n]:
            decide(r)
    finally:
        sys.settrace(None)
    print(f"rules={args.rules} decisions={n} bytecodes/decision={sum(by_fn.values()) / n:.1f}")
    for (where, name), count in by_fn.most_common(args.top):
        print(f"{count / n:8.1f}  {where}:{name}")
    print("lines:")
    for (where, name, line), count in by_line.most_common(args.top):
        print(f"{count / n:8.1f}  {where}:{line} ({name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
