"""Where a decision's instructions go, and the floor of its validation: `python bench/floor.py`.

Counts instructions per decision under callgrind (as ``bench/instr.py`` does, so the figures do
not depend on the machine's load) for parts of the decide pipeline run alone over the same
requests:

- ``decide``: ``Engine.decide``, the whole decision;
- ``validate``: ``validate_request`` alone (the shape tier, or the model tier where it says "not
  mine");
- ``pipeline`` (engine workload only): ``Engine._decide`` on requests validated beforehand, i.e.
  everything after validation;
- ``straight`` (engine workload only): a straight-line check of the engine bench's one request
  shape, under the bounds the shape tier enforces (exact classes, id lengths, 64-bit integers, no
  NaN or infinity, text length, at most 64 values per mapping), that builds nothing but a tuple.
  No validator written in Python can do less for that shape; it is a yardstick here, not a
  validator (it knows one shape and words no error).

``--agents`` runs the agents suite's decisions instead (bench/agents, policy set ``after``, as
``bench/instr.py --agents`` plays them): the requests are recorded while the runs are played,
then validated again alone. (Deciding them again alone would replay state, so ``pipeline`` is
the difference ``decide - validate`` there.)

An empty loop over the same requests is counted too and taken off every figure.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.instr import agents_workload, callback_instructions, counted, engine_workload  # noqa: E402

ENGINE_PARTS = ("empty", "decide", "validate", "pipeline", "straight")
AGENTS_PARTS = ("empty", "decide", "validate")

_I64_MIN, _I64_MAX = -9223372036854775808, 9223372036854775807


def straight_check(d: Any) -> tuple[Any, ...] | None:
    """The engine bench's request shape checked in straight lines under the shape tier's bounds
    (see the module docstring); None for anything else."""
    if d.__class__ is not dict or len(d) != 3:
        return None
    try:
        actor, action, ctx = d["actor"], d["action"], d["context"]
    except KeyError:
        return None
    if actor.__class__ is not dict or action.__class__ is not dict or ctx.__class__ is not dict:
        return None
    if len(actor) != 3 or len(action) != 3 or len(ctx) != 1:
        return None
    try:
        aid, roles, attrs = actor["id"], actor["roles"], actor["attributes"]
        kind, target, args, env = action["kind"], action["target"], action["args"], ctx["env"]
    except KeyError:
        return None
    if aid.__class__ is not str or not 0 < len(aid) <= 256:
        return None
    if target.__class__ is not str or not 0 < len(target) <= 256:
        return None
    if roles.__class__ is not list or len(roles) != 1 or kind != "call":
        return None
    if env.__class__ is not str or len(env) > 256:
        return None
    role = roles[0]
    if role.__class__ is not str or len(role) > 256:
        return None
    if attrs.__class__ is not dict or args.__class__ is not dict:
        return None
    for values in (attrs, args):
        if len(values) > 64:
            return None
        for k, v in values.items():
            if k.__class__ is not str or len(k) > 256:
                return None
            c = v.__class__
            if c is int:
                if not _I64_MIN <= v <= _I64_MAX:
                    return None
            elif c is float:
                if v - v != 0.0:
                    return None
            elif c is str:
                if len(v) > 262144:
                    return None
            elif c is not bool and v is not None:
                return None
    return (aid, (role,), attrs, target, args, env)


def _engine_loop(part: str, n: int) -> None:
    """Run inside valgrind: one part over the engine bench's workload, ``n`` requests."""
    from charter.engine.validate import validate_request

    engine, reqs = engine_workload(14)
    for r in reqs:  # warm-up: plans, CEL caches
        engine.decide(r)
        assert straight_check(r) is not None, "the straight check must accept the workload"
    valid = [validate_request(r) for r in reqs]
    m = len(reqs)
    decide, inner = engine.decide, engine._decide

    def each(fn: Callable[[Any], object], items: list[Any]) -> Callable[[], None]:
        # a plain loop that keeps no result (a kept result would change what the allocator reuses)
        def loop() -> None:
            for i in range(n):
                fn(items[i % m])

        return loop

    loops: dict[str, Callable[[], None]] = {
        "empty": each(len, reqs),
        "decide": each(decide, reqs),
        "validate": each(validate_request, reqs),
        "pipeline": each(lambda v: inner(v, 0.0, None), valid),
        "straight": each(straight_check, reqs),
    }
    counted(loops[part])()
    print(f"decisions={n}")


def _agents_loop(part: str, runs: int) -> None:
    """Run inside valgrind: one part over the agents suite's recorded requests."""
    import charter
    from charter.engine.validate import validate_request

    _, play = agents_workload("after", runs)
    original = charter.Engine.decide
    seen: list[Any] = []
    box: list[Any] = [None, None, None]

    def body() -> None:
        box[2] = original(box[0], box[1])

    run_counted = counted(body)

    def decide(self: Any, request: Any) -> Any:
        seen.append(copy.deepcopy(request))
        if part != "decide":
            return original(self, request)
        box[0], box[1] = self, request
        run_counted()
        return box[2]

    charter.Engine.decide = decide  # type: ignore[method-assign]
    try:
        play()
    finally:
        charter.Engine.decide = original  # type: ignore[method-assign]

    def each(fn: Callable[[Any], object]) -> Callable[[], None]:
        def loop() -> None:
            for r in seen:
                fn(r)

        return loop

    if part == "validate":
        counted(each(validate_request))()
    elif part == "empty":
        counted(each(len))()
    print(f"decisions={len(seen)}")


def main(argv: list[str] | None = None) -> int:
    """Count each part under callgrind and print a table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2000, help="engine workload: requests counted")
    ap.add_argument("--agents", action="store_true", help="the agents suite's decisions instead")
    ap.add_argument("--runs", type=int, default=40, help="with --agents: runs of the workload")
    ap.add_argument("--python", default=sys.executable, help="interpreter whose charter is measured")
    ap.add_argument("--inner", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.inner:
        if args.agents:
            _agents_loop(args.inner, args.runs)
        else:
            _engine_loop(args.inner, args.n)
        return 0
    parts = AGENTS_PARTS if args.agents else ENGINE_PARTS
    what = ["--agents", "--runs", str(args.runs)] if args.agents else ["-n", str(args.n)]
    per: dict[str, float] = {}
    for i, part in enumerate(parts, 1):
        print(f"[{i}/{len(parts)}] {part}", file=sys.stderr, flush=True)
        total, out = callback_instructions(args.python, [__file__, "--inner", part, *what])
        n = int(next(ln for ln in out.splitlines() if ln.startswith("decisions=")).split("=")[1])
        per[part] = total / n
    empty = per.pop("empty")
    # the empty loop's cost per request is part of every other loop (in the agents' decide part
    # the callback runs once per decision, so its loop is the workload's own: nothing to take off)
    net = {p: v - (0.0 if args.agents and p == "decide" else empty) for p, v in per.items()}
    if args.agents:
        net["pipeline"] = net["decide"] - net["validate"]
    whole = net["decide"]
    label = f"agents after, {args.runs} runs" if args.agents else f"engine bench, 14 rules, {args.n} requests"
    print(f"instructions per decision ({label}; empty loop {empty:,.0f} taken off)")
    print(f"{'part':<10} {'instructions':>13} {'of decide':>10}")
    for part, v in net.items():
        print(f"{part:<10} {v:>13,.0f} {v / whole:>10.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
