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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass
class Row:
    """One condition (by its source text; equal texts of several rules are one row)."""

    source: str
    #: "fast", or "slow: " and the constructs without a fast form
    path: str
    runs: int = 0
    #: runs of a fast closure that fell back to the evaluator (a guard failed)
    fallbacks: int = 0
    seconds: float = 0.0


@contextmanager
def _instrumented(rows: dict[str, Row]) -> Iterator[None]:
    """While inside, every condition compiled is counted and timed into ``rows``."""
    from charter.cel import api, fastpath

    original_init = api.Compiled.__init__

    def init(self: Any, source: str, node: Any, *rest: Any) -> None:
        original_init(self, source, node, *rest)
        key = " ".join(source.split())
        fast = self.fn is not self.evaluate
        row = rows.setdefault(key, Row(key, "fast" if fast else "slow: " + _why_slow(node)))
        slow, fn = self.evaluate, self.fn
        inside = [False]

        def counted_slow(act: Mapping[str, Any]) -> Any:
            if inside[0]:
                row.fallbacks += 1
            return slow(act)

        if fast:  # the fast closure again, around a slow that counts fall backs
            fn = fastpath.build_fast(node, counted_slow, self._limits.max_cost) or fn

        def timed(act: Mapping[str, Any]) -> Any:
            row.runs += 1
            inside[0] = True
            t = time.perf_counter()
            try:
                return fn(act)
            finally:
                row.seconds += time.perf_counter() - t
                inside[0] = False

        self.fn = timed

    api.Compiled.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        api.Compiled.__init__ = original_init  # type: ignore[method-assign]


def measure(policy_set: str = "after", runs: int = 10) -> list[Row]:
    """Load the policy set with its conditions instrumented, play ``runs`` runs of the agents
    workload, and give a row per condition compiled (most time first)."""
    import charter
    from bench.agents.policysets import CORPUS, POLICY_SETS
    from bench.agents.runner import run_scenario
    from bench.agents.scenario import load_corpus
    from bench.agents.workload import build_runs

    ps = POLICY_SETS[policy_set]
    corpus = load_corpus(CORPUS)
    rows: dict[str, Row] = {}
    with _instrumented(rows):
        policy = charter.load(ps.policy_path())
    for br in build_runs(corpus, runs):
        run_scenario(policy, ps, corpus, br.scenario)
    return sorted(rows.values(), key=lambda r: -r.seconds)


def main(argv: list[str] | None = None) -> int:
    """Measure and print."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--policy-set", default="after")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--top", type=int, default=60)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    rows = measure(args.policy_set, args.runs)
    total = sum(r.seconds for r in rows) or 1.0
    ran = [r for r in rows if r.runs]
    slow = sum(1 for r in ran if r.path != "fast")
    print(
        f"{len(rows)} conditions compiled, {len(ran)} ran: {len(ran) - slow} fast, {slow} without a "
        f"fast form; {sum(r.fallbacks for r in ran)} fall backs in {sum(r.runs for r in ran)} runs"
    )
    print(f"{'runs':>6} {'fallbk':>6} {'µs/run':>8} {'share':>6}  path  condition")
    for r in ran[: args.top]:
        print(
            f"{r.runs:6d} {r.fallbacks:6d} {r.seconds / r.runs * 1e6:8.1f} {r.seconds / total:6.1%}  "
            f"{r.path:<5} {r.source[:110]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
