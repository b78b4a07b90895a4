"""Time of the proved diff: the example policies against a one-rule change, and an N-rule generated
policy against itself with one widened rule (`python bench/prove_bench.py [--rules 1000] [--json]`)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generated(rules: int, threshold: float) -> str:
    """A policy of ``rules`` rules over rules//10 tools; tool 0's lowest approval threshold: ``threshold``."""
    tools = max(1, rules // 10)
    out = ["policy big\n\nunits USD\nroles r0, r1, r2, r3\n\ngroup g { members p, q }\n"]
    for t in range(tools):
        out.append(f"tool t{t} {{\n  arg amount: double\n  arg n: int\n  arg s: string\n}}\n")
    for i in range(rules):
        t = i % tools
        kind = i // tools % 10
        name = f"r{i}"
        if kind < 4:
            out.append(f'permit {name} {{\n  actor role r{kind}\n  action call t{t}\n  reason "p"\n}}\n')
        elif kind < 7:
            limit = threshold if (t == 0 and kind == 4) else 100.0 * kind
            out.append(
                f"require approval {name} {{\n  action call t{t}\n  when args.amount > {limit}\n"
                f'  approvers g\n  reason "a"\n}}\n'
            )
        elif kind < 9:
            out.append(
                f'forbid {name} {{\n  action call t{t}\n  when args.s.startsWith("x{kind}")\n'
                f'  reason "f"\n}}\n'
            )
        else:
            out.append(f'halt {name} {{\n  action call t{t}\n  when args.n > 1000\n  reason "h"\n}}\n')
    return "\n".join(out)


def main() -> None:
    """Run both measurements and print them."""
    sys.path.insert(0, str(ROOT / "src"))
    from charter.analysis.diff import prove_diff
    from charter.api import check

    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        new = Path(tmp) / "policies"
        shutil.copytree(ROOT / "policies", new)
        gates = new / "gates.charter"
        gates.write_text(gates.read_text().replace("args.amount > 10000.0", "args.amount > 20000.0"))
        a, b = check([str(ROOT / "policies")]).policy, check([str(new)]).policy
        assert a is not None and b is not None
        t0 = time.perf_counter()
        res = prove_diff(a, b)
        out["examples_one_rule_s"] = round(time.perf_counter() - t0, 3)
        out["examples_changes"] = [(c.kind, c.case) for c in res.changes]
        (Path(tmp) / "old.charter").write_text(generated(args.rules, 400.0))
        (Path(tmp) / "new.charter").write_text(generated(args.rules, 450.0))
        a, b = check([str(Path(tmp) / "old.charter")]).policy, check([str(Path(tmp) / "new.charter")]).policy
        assert a is not None and b is not None
        assert len(a.rules) == args.rules
        t0 = time.perf_counter()
        res = prove_diff(a, b)
        out[f"generated_{args.rules}_rules_s"] = round(time.perf_counter() - t0, 3)
        out["generated_changes"] = [(c.kind, c.case) for c in res.changes]
        out["generated_unknown"] = len(res.unknowns)
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
