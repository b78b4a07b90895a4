"""Cost of one ``after ... where`` rule over a run's history: `python bench/history_bench.py`.

One forbid rule (``after call mail.send where earlier.result.id == args.message_id``) over a run
of N settled ``mail.send`` calls; a ``mail.delete`` names the newest or the oldest sent mail (the
rule is checked against 1 or N entries), or a ``mail.archive`` names none (``before ... where``:
all N entries). Prints the best-of-5 median microseconds per
decision; ``--instr`` counts instructions per decision under callgrind instead (stable on a
loaded machine; see bench/instr.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

POLICY = """
policy history-bench
tool mail.send { arg to: string  arg body: string  result id: string }
tool mail.delete { arg message_id: string }
tool mail.archive { arg message_id: string }
permit work { action call mail.send, mail.delete, mail.archive  reason "ok" }
forbid delete-own-mail {
  action call mail.delete
  after call mail.send where earlier.result.id == args.message_id
  reason "A run never deletes mail it sent itself."
}
forbid archive-only-own-mail {
  action call mail.archive
  before call mail.send where earlier.result.id == args.message_id
  reason "A run archives only mail it sent."
}
"""

CASES = ("newest", "oldest", "none")


def setup(entries: int, case: str) -> tuple[Any, dict[str, Any]]:
    """An engine whose run ``r`` holds ``entries`` settled sends, and the request to decide."""
    sys.path.insert(0, str(ROOT / "src"))
    import charter

    engine = charter.Engine(charter.loads(POLICY))
    for i in range(entries):
        d = engine.decide(
            {
                "actor": {"id": "bot"},
                "action": {"target": "mail.send", "args": {"to": "a@b.example", "body": f"hello {i}"}},
                "context": {"run": "r"},
            }
        )
        engine.settle(d.id, result={"id": f"m-{i}"})
    target = {"newest": f"m-{entries - 1}", "oldest": "m-0", "none": "m-x"}[case]
    # "none" archives: no entry matches, so the ``before`` rule denies (an allowed call would
    # add an entry to the run and change what the next decision reads)
    req = {
        "actor": {"id": "bot"},
        "action": {
            "target": "mail.archive" if case == "none" else "mail.delete",
            "args": {"message_id": target},
        },
        "context": {"run": "r"},
    }
    d = engine.decide(req)
    assert d.outcome.value == "deny" and not d.failures, (case, d.outcome, d.failures)
    return engine, req


def timed(entries: int, case: str, n: int) -> float:
    """Best-of-5 median microseconds per decision."""
    engine, req = setup(entries, case)
    decide = engine.decide
    best = float("inf")
    for _ in range(5):
        xs = []
        for _ in range(n):
            t = time.perf_counter_ns()
            decide(req)
            xs.append(time.perf_counter_ns() - t)
        best = min(best, statistics.median(xs) / 1000)
    return best


def _inner(entries: int, case: str, n: int) -> None:
    sys.path.insert(0, str(ROOT))
    from bench.instr import counted

    engine, req = setup(entries, case)
    decide = engine.decide
    for _ in range(10):
        decide(req)

    def loop() -> None:
        for _ in range(n):
            decide(req)

    counted(loop)()


def instructions(entries: int, case: str, n: int) -> int:
    """Instructions per decision under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
             "--inner", "--entries", str(entries), "--case", case, "-n", str(n)],
            check=True, capture_output=True,
        )  # fmt: skip
        text = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    for line in text.splitlines():
        if "_CallPythonObject" in line or "closure_fcn" in line:
            return int(line.split()[0].replace(",", "")) // n
    raise RuntimeError("the callback was not found in callgrind's output")


def main(argv: list[str] | None = None) -> int:
    """Print microseconds (or instructions) per decision for each size and case."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, nargs="*", default=[20, 500])
    ap.add_argument("--case", choices=CASES, nargs="*", default=list(CASES))
    ap.add_argument("-n", type=int, default=0, help="decisions per sample (default by size)")
    ap.add_argument("--instr", action="store_true", help="instructions under callgrind")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.inner:
        _inner(args.entries[0], args.case[0], args.n)
        return 0
    for entries in args.entries:
        for case in args.case:
            if args.instr:
                n = args.n or (200 if entries <= 50 else 20)
                print(f"entries={entries} {case}: {instructions(entries, case, n):,} instructions/decision")
            else:
                n = args.n or (2000 if entries <= 50 else 200)
                print(f"entries={entries} {case}: {timed(entries, case, n):.1f} us/decision")
    return 0


if __name__ == "__main__":
    sys.exit(main())
