"""Parse and full-check wall time for generated policies of 1,000 and 10,000 rules."""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from charter.api import check
from charter.syntax import parse_text

#: Targets in seconds: (rules, parse, check).
TARGETS = {1_000: 0.5, 10_000: 5.0}

_HEAD = """policy bench

units USD, tokens

roles research, risk, payments, coding

attribute clearance: int

context env: string

group treasury {
  members alice, bob
}

escalation chain {
  to treasury for 1h
  finally deny
}
"""


def policy_text(rules: int, seed: int = 7) -> str:
    """A realistic policy: tools, then ``rules`` rules of several clauses and a condition each."""
    r = random.Random(seed)
    tools = max(10, rules // 20)
    parts = [_HEAD]
    for t in range(tools):
        parts.append(
            f"tool t{t}.op {{\n  category c{t % 7}\n  tags tag{t % 5}, paid\n"
            f"  arg amount: double\n  arg memo: string\n}}\n"
        )
    roles = ["research", "risk", "payments", "coding"]
    for i in range(rules):
        tool = f"t{r.randrange(tools)}.op"
        role = r.choice(roles)
        cond = r.choice(
            [
                f"args.amount > {r.randint(1, 5000)}.0",
                f'actor.clearance < {r.randint(1, 5)} && args.memo != "prod"',
                f'args.memo.startsWith("x{i}") || args.amount >= {r.randint(1, 99)}.5',
                f'"{role}" in actor.roles && size(args.memo) < {r.randint(5, 50)}',
            ]
        )
        k = i % 5
        if k == 0:
            parts.append(
                f"permit r{i} {{\n  actor role {role}\n  action call {tool}\n"
                f'  when {cond}\n  reason "rule {i}"\n}}\n'
            )
        elif k == 1:
            parts.append(
                f"forbid r{i} {{\n  actor role {role}\n  action call tagged tag{i % 5}\n"
                f'  when {cond}\n  mode enforce\n  reason "rule {i}"\n}}\n'
            )
        elif k == 2:
            parts.append(
                f"require approval r{i} {{\n  action call {tool}\n  when {cond}\n"
                f'  approvers treasury\n  quorum 1\n  reason "rule {i}"\n}}\n'
            )
        elif k == 3:
            parts.append(
                f"budget r{i} {{\n  scope agent\n  action call {tool}\n"
                f"  limit {r.randint(10, 900)} USD per day\n  when {cond}\n"
                f'  reason "rule {i}"\n}}\n'
            )
        else:
            parts.append(
                f"escalate r{i} {{\n  actor role {role}\n  action call {tool}\n"
                f'  when {cond}\n  to chain\n  reason "rule {i}"\n}}\n'
            )
    return "\n".join(parts)


def run(quick: bool) -> list[dict[str, object]]:
    """Measure parse and full check for each size; ``quick`` runs the 1,000-rule size only."""
    parse_text("policy warm-up")
    rows: list[dict[str, object]] = []
    for rules in [1_000] if quick else [1_000, 10_000]:
        text = policy_text(rules)
        start = time.perf_counter()
        parsed = parse_text(text, "bench.charter")
        parse_s = time.perf_counter() - start
        assert parsed.module is not None, parsed.diagnostics[:3]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.charter"
            path.write_text(text, encoding="utf-8")
            start = time.perf_counter()
            result = check([path])
            check_s = time.perf_counter() - start
        errors = [f"{d.span}: {d.code.value} {d.message}" for d in result.errors[:3]]
        rows.append(
            {
                "rules": rules,
                "bytes": len(text.encode()),
                "lines": text.count("\n"),
                "parse_s": round(parse_s, 3),
                "check_s": round(check_s, 3),
                "target_s": TARGETS[rules],
                "parse_ok": parse_s <= TARGETS[rules],
                "check_ok": check_s <= TARGETS[rules],
                "errors": errors,
            }
        )
    return rows


def main() -> None:
    """Print the measurements as JSON lines."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="only the 1,000-rule policy")
    args = ap.parse_args()
    for row in run(args.quick):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
