"""Instructions per decision under callgrind: `python bench/instr.py [--rules 14] [-n 3000]`.

``--state memory|sqlite`` counts the `state` suite's decisions instead (bench/suites/state.py:
one budget and one rate per decision) on that store (the SQLite file in a temporary directory).

``--agents before|after`` counts the `agents` suite's decisions instead: ``--runs`` runs of the
assistant's workload (bench/agents), played once to warm up, then again with every
``Engine.decide`` called inside the callback (settling, building requests and answering gates
are not counted).

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
import gc
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def counted(fn: Callable[[], None]) -> Callable[[], None]:
    """A call of ``fn`` made from C (libc ``bsearch`` calls it back once), so that callgrind
    names it: the inclusive cost of ``_CallPythonObject`` is exactly what ``fn`` ran. The
    callback is built once; call the result as often as needed."""
    callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(lambda a, b: fn() or 0)
    one = (ctypes.c_int * 1)(1)
    key = ctypes.c_int(1)
    bsearch = ctypes.CDLL(None).bsearch

    def run() -> None:
        bsearch(ctypes.byref(key), one, 1, 4, callback)

    run.callback = callback  # type: ignore[attr-defined]  # kept alive as long as run is
    return run


def settle_heap() -> None:
    """Before counting: what import and warm-up made is never collected again. A full collection's
    work is proportional to every tracked object, so without this the agents count moved by ~5,000
    instructions a decision (2 %) with the layout of the modules imported (a name added to one)."""
    gc.collect()
    gc.freeze()


def engine_workload(rules: int) -> tuple[Any, list[dict[str, Any]]]:
    """The engine bench's charter engine at ``rules`` rules and its requests, as dicts (not yet
    decided: warm it up before counting)."""
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
    return engine, reqs


def _loop(rules: int, n: int) -> None:
    """Run inside valgrind: build the engine, warm it up, decide ``n`` requests in the callback."""
    sys.path.insert(0, str(ROOT))
    engine, reqs = engine_workload(rules)
    decide = engine.decide
    for r in reqs:
        decide(r)
    m = len(reqs)
    settle_heap()

    def loop() -> None:
        for i in range(n):
            decide(reqs[i % m])

    counted(loop)()


def _state_loop(store_name: str, n: int) -> None:
    """Run inside valgrind: the state suite's engine and requests on one store, ``n`` decisions."""
    sys.path.insert(0, str(ROOT))
    import charter
    from bench.suites.state import POLICY
    from charter.state import open_store

    with tempfile.TemporaryDirectory() as tmp:
        url = "memory://" if store_name == "memory" else f"sqlite://{tmp}/bench.db"
        store = open_store(url)
        engine = charter.Engine(charter.loads(POLICY), store=store)
        # the suite's requests: 50 actors, 7 arguments (350 distinct requests, cycled)
        reqs = [
            {
                "actor": {"id": f"a{i % 50}"},
                "action": {"target": "api", "args": {"q": str(i % 7)}},
                "cost": {"USD": 0.01},
            }
            for i in range(350)
        ]
        decide = engine.decide
        for r in reqs:  # warm-up: every request decided once
            if decide(r).outcome.value != "allow":
                raise RuntimeError("the state workload must be allowed")
        m = len(reqs)
        settle_heap()

        def loop() -> None:
            for i in range(n):
                decide(reqs[i % m])

        counted(loop)()
        store.close()


def agents_workload(policy_set: str, runs: int) -> tuple[Any, Callable[[], None]]:
    """The agents suite's compiled policy for ``policy_set`` and a function that plays ``runs``
    runs of its workload (bench/agents), played once already to warm up (imports, plans, CEL
    caches)."""
    import charter
    from bench.agents.policysets import CORPUS, POLICY_SETS
    from bench.agents.runner import run_scenario
    from bench.agents.scenario import load_corpus
    from bench.agents.workload import build_runs

    ps = POLICY_SETS[policy_set]
    corpus = load_corpus(CORPUS)
    policy = charter.load(ps.policy_path())
    work = build_runs(corpus, runs)

    def play() -> None:
        for br in work:
            run_scenario(policy, ps, corpus, br.scenario)

    play()
    return policy, play


def _agents_loop(policy_set: str, runs: int, writes: bool = False) -> None:
    """Run inside valgrind: the agents workload, each decide inside the callback; prints the count.

    ``writes``: only the decisions on tools outside category ``read`` are counted (the others
    run outside the callback): the write tools are where conditions run."""
    sys.path.insert(0, str(ROOT))
    import charter

    policy, play = agents_workload(policy_set, runs)
    settle_heap()
    original = charter.Engine.decide
    box: list[Any] = [None, None, None]
    count = [0]

    def body() -> None:
        box[2] = original(box[0], box[1])

    run_counted = counted(body)

    tools = policy.tools

    def decide(self: Any, request: Any) -> Any:
        if writes:
            info = tools.get(request.get("action", {}).get("target", ""))
            if info is not None and info.category == "read":
                return original(self, request)
        box[0], box[1] = self, request
        count[0] += 1
        run_counted()
        return box[2]

    charter.Engine.decide = decide  # type: ignore[method-assign]
    play()
    print(f"decisions={count[0]}")


def main(argv: list[str] | None = None) -> int:
    """Run the loop under callgrind and print the instructions per decision."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rules", type=int, default=14)
    ap.add_argument("-n", type=int, default=3000, help="decisions counted")
    ap.add_argument("--python", default=sys.executable, help="interpreter whose charter is measured")
    ap.add_argument("--agents", choices=["before", "after"], help="the agents suite's decisions instead")
    ap.add_argument(
        "--state", choices=["memory", "sqlite"], help="the state suite's decisions on this store instead"
    )
    ap.add_argument("--runs", type=int, default=40, help="with --agents: runs of the workload")
    ap.add_argument(
        "--writes",
        action="store_true",
        help="with --agents: count only decisions on tools not of category read",
    )
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.inner:
        if args.agents:
            _agents_loop(args.agents, args.runs, args.writes)
        elif args.state:
            _state_loop(args.state, args.n)
        else:
            _loop(args.rules, args.n)
        return 0
    what = (
        ["--agents", args.agents, "--runs", str(args.runs), *(["--writes"] if args.writes else [])]
        if args.agents
        else ["--state", args.state]
        if args.state
        else ["--rules", str(args.rules)]
    )
    total, stdout = callback_instructions(args.python, [__file__, "--inner", *what, "-n", str(args.n)])
    n = args.n
    label = f"rules={args.rules}"
    if args.agents:
        n = int(next(ln for ln in stdout.splitlines() if ln.startswith("decisions=")).split("=")[1])
        label = f"agents={args.agents}{' writes' if args.writes else ''} runs={args.runs} decisions={n}"
    elif args.state:
        label = f"state={args.state}"
    print(f"{label} instructions/decision={total // n}")
    return 0


def callback_instructions(python: str, argv: list[str]) -> tuple[int, str]:
    """Run ``python argv`` under callgrind: the inclusive instructions of the one :func:`counted`
    callback it made, and its standard output. Raises RuntimeError when no callback ran."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", python, *argv]
        ran = subprocess.run(cmd, check=True, capture_output=True, text=True)
        text = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    for line in text.splitlines():
        if "_CallPythonObject" in line or "closure_fcn" in line:
            return int(line.split()[0].replace(",", "")), ran.stdout
    raise RuntimeError("the callback was not found in callgrind's output")


if __name__ == "__main__":
    sys.exit(main())
