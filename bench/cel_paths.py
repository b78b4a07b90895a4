"""Which path each condition of a policy set takes in the `agents` suite, and what it costs.

``python bench/cel_paths.py [--policy-set after] [--runs 10]`` compiles the policy set with every
CEL condition instrumented, plays the agents workload, and prints one line per condition that
ran: how often it ran, on which path (``fast``: the compiled closures of cel/fastpath.py;
``fallback``: a fast closure whose guard failed, so the evaluator decided; ``slow``: no fast form
at all, with the construct that has none), and the time spent inside it (inclusive: a
``granted()`` counts the grant's ``covers`` conditions it ran). Times are wall clock on a shared
machine; use them to rank, and bench/instr.py to compare.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _why_slow(node: Any) -> str:
    """The innermost constructs the fast path has no form for (their children all have one)."""
    from charter.cel import fastpath

    found: list[str] = []

    def children(n: Any) -> list[Any]:
        out = []
        for name in getattr(n, "__dataclass_fields__", {}):
            v = getattr(n, name)
            for c in v if isinstance(v, (list, tuple)) else (v,):
                for x in c if isinstance(c, tuple) else (c,):
                    if hasattr(x, "__dataclass_fields__"):
                        out.append(x)
        return out

    def fails(n: Any) -> bool:
        try:
            fastpath._Gen().gen(n)
            return False
        except Exception:
            return True

    def visit(n: Any) -> None:
        if not fails(n):
            return
        bad = [c for c in children(n) if fails(c)]
        if not bad:
            what = getattr(n, "name", None) or getattr(n, "op", None) or getattr(n, "macro", "")
            found.append(f"{type(n).__name__}({what})")
        for c in bad:
            visit(c)

    visit(node)
    return ",".join(sorted(set(found))) or "?"


def main(argv: list[str] | None = None) -> int:
    """Instrument, play, print."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--policy-set", default="after")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--top", type=int, default=60)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    from charter.cel import api, fastpath

    calls: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])  # runs, fallbacks, seconds
    paths: dict[str, str] = {}
    original_build = fastpath.build_fast

    def build(node: Any, slow: Callable[[Mapping[str, Any]], Any], max_cost: int | None = None) -> Any:
        key = f"{node.start}:{node.end}:{id(node)}"
        return original_build(node, slow, max_cost), key

    original_init = api.Compiled.__init__

    def init(self: Any, source: str, node: Any, *rest: Any) -> None:
        original_init(self, source, node, *rest)
        key = " ".join(source.split())
        fast = self.fn is not self.evaluate
        paths[key] = "fast" if fast else "slow: " + _why_slow(node)
        slow, fn = self.evaluate, self.fn
        box = calls[key]
        inside = [False]

        def counted_slow(act: Mapping[str, Any]) -> Any:
            if inside[0]:
                box[1] += 1
            return slow(act)

        if fast:  # rebuild the fast closure around a slow that counts fall backs
            fn = fastpath.build_fast(node, counted_slow, self._limits.max_cost)

        def timed(act: Mapping[str, Any]) -> Any:
            box[0] += 1
            inside[0] = True
            t = time.perf_counter()
            try:
                return fn(act)
            finally:
                box[2] += time.perf_counter() - t
                inside[0] = False

        self.fn = timed

    api.Compiled.__init__ = init  # type: ignore[method-assign]

    import charter
    from bench.agents.policysets import CORPUS, POLICY_SETS
    from bench.agents.runner import run_scenario
    from bench.agents.scenario import load_corpus
    from bench.agents.workload import build_runs

    ps = POLICY_SETS[args.policy_set]
    corpus = load_corpus(CORPUS)
    policy = charter.load(ps.policy_path())
    work = build_runs(corpus, args.runs)
    for br in work:
        run_scenario(policy, ps, corpus, br.scenario)
    rows = sorted(calls.items(), key=lambda kv: -kv[1][2])
    total = sum(v[2] for v in calls.values())
    print(f"{'runs':>6} {'fallbk':>6} {'µs/run':>8} {'share':>6}  path  condition")
    for key, (n, fb, s) in rows[: args.top]:
        if not n:
            continue
        print(f"{n:6d} {fb:6d} {s / n * 1e6:8.1f} {s / total:6.1%}  {paths[key]:<5} {key[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
