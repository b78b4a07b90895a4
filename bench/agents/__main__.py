"""`python -m bench.agents [before] [--json] [--only ID,...]`: run the scenarios, print the figures."""

from __future__ import annotations

import argparse
import json
import sys

from bench.agents.policysets import CORPUS, POLICY_SETS
from bench.agents.runner import figures, run_corpus
from bench.agents.scenario import load_corpus


def main(argv: list[str] | None = None) -> int:
    """Run every scenario against a policy set; one line per scenario, then the figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("policy_set", nargs="?", default="before", choices=sorted(POLICY_SETS))
    ap.add_argument("--json", action="store_true", help="one JSON object: reports and figures")
    ap.add_argument("--only", default="", help="comma-separated scenario ids")
    args = ap.parse_args(argv)
    corpus = load_corpus(CORPUS)
    chosen = [s for s in corpus.scenarios if not args.only or s.id in args.only.split(",")]
    try:
        reports = run_corpus(corpus, POLICY_SETS[args.policy_set], chosen)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    figs = figures(reports)
    if args.json:
        print(json.dumps({"reports": [r.to_dict() for r in reports], "figures": figs.to_dict()}, indent=1))
        return 0
    for r in reports:
        steps = " ".join(
            f"{s.id}={s.outcome}" + (f"->{s.final}" if s.final != s.outcome else "") + "!" * s.harmful
            for s in r.steps
            if s.outcome != "allow" or s.harmful
        )
        head = r.verdict if r.kind == "attack" else f"approvals={r.approvals}"
        broke = f" BROKEN={r.blocked}" if r.blocked else ""
        print(
            f"{r.id:8s} {head:12s}{broke} {steps}  [{', '.join(r.stopped_by)}]"
            if r.kind == "attack"
            else f"{r.id:8s} {head:12s}{broke} {steps}"
        )
    print()
    for line in figs.lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
