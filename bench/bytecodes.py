"""Bytecodes per decision, by function and line: `python bench/bytecodes.py [--rules 14] [--top 30]`.

A profile that the load on a shared machine does not change: the interpreter's own count of the
bytecodes each function runs (``sys.settrace`` with opcode events) over the engine bench's
workload, warmed up as ``bench/instr.py`` warms it. Bytecodes are not instructions (a dict
built or a frame pushed costs more than a jump), but where they go shows where the decide
pipeline's interpreted work is; ``bench/instr.py`` gives the instruction total. ``--outcome``
keeps only the requests decided that way (allow, deny, require_approval).

``--agents before|after`` profiles the `agents` suite's decisions instead (as ``bench/instr.py
--agents`` plays them: ``--runs`` runs, played once to warm up, then again traced), ``--writes``
only those on tools outside category ``read`` (where conditions, grants and provenance run).
``--inclusive`` adds each function's count with everything it calls (a function on the stack
twice counts once), and ``--within FILE:FUNCTION`` the lines run under that function.
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
    ap.add_argument("--agents", choices=["before", "after"], help="the agents suite's decisions instead")
    ap.add_argument("--runs", type=int, default=40, help="with --agents: runs of the workload")
    ap.add_argument("--writes", action="store_true", help="with --agents: only tools not of category read")
    ap.add_argument("--inclusive", action="store_true", help="also counts with callees, by function")
    ap.add_argument("--within", default=None, help="FILE:FUNCTION: also the lines run under it")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.agents:
        return _agents(args)
    from bench.instr import engine_workload

    engine, reqs = engine_workload(args.rules)
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


def _agents(args: argparse.Namespace) -> int:
    """The agents workload's decisions under the tracer (see the module docstring)."""
    import charter
    from bench.instr import agents_workload

    policy, play = agents_workload(args.agents, args.runs)
    by_fn: collections.Counter[tuple[str, str]] = collections.Counter()
    by_line: collections.Counter[tuple[str, str, int]] = collections.Counter()
    calls: collections.Counter[tuple[str, str]] = collections.Counter()
    incl: collections.Counter[tuple[str, str]] = collections.Counter()
    within: collections.Counter[tuple[str, str, int]] = collections.Counter()
    stack: list[tuple[str, str]] = []
    inner = tuple(args.within.split(":", 1)) if args.within else None

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        code = frame.f_code
        key = (code.co_filename.rsplit("/", 1)[-1], code.co_name)
        if event == "opcode":
            by_fn[key] += 1
            by_line[(*key, frame.f_lineno or 0)] += 1
            if args.inclusive or inner:
                on = set(stack)
                for k in on:
                    incl[k] += 1
                if inner in on:
                    within[(*key, frame.f_lineno or 0)] += 1
        elif event == "call":
            calls[key] += 1
            stack.append(key)
        elif event == "return" and stack:
            stack.pop()
        return trace

    original = charter.Engine.decide
    tools = policy.tools
    count = [0]

    def decide(self: Any, request: Any) -> Any:
        if args.writes:
            info = tools.get(request.get("action", {}).get("target", ""))
            if info is not None and info.category == "read":
                return original(self, request)
        count[0] += 1
        stack.clear()
        sys.settrace(trace)
        try:
            return original(self, request)
        finally:
            sys.settrace(None)

    charter.Engine.decide = decide  # type: ignore[method-assign]
    try:
        play()
    finally:
        charter.Engine.decide = original  # type: ignore[method-assign]
    n = max(count[0], 1)
    what = f"agents={args.agents}{' writes' if args.writes else ''} runs={args.runs}"
    print(f"{what} decisions={count[0]} bytecodes/decision={sum(by_fn.values()) / n:.1f}")
    print("by function (own bytecodes, calls per decision):")
    for key, c in by_fn.most_common(args.top):
        print(f"{c / n:8.1f} {calls[key] / n:6.1f}  {key[0]}:{key[1]}")
    if args.inclusive:
        print("by function, with callees:")
        for key, c in incl.most_common(args.top):
            print(f"{c / n:8.1f} {calls[key] / n:6.1f}  {key[0]}:{key[1]}")
    if inner:
        print(f"under {args.within}: {sum(within.values()) / n:.1f} bytecodes/decision")
        for (where, name, line), c in within.most_common(args.top):
            print(f"{c / n:8.1f}  {where}:{line} ({name})")
    print("lines:")
    for (where, name, line), c in by_line.most_common(args.top):
        print(f"{c / n:8.1f}  {where}:{line} ({name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
