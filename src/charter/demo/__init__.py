"""`make demo`: a scripted, deterministic multi-agent workflow decided by charter (no LLM)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

POLICIES = Path(__file__).resolve().parents[3] / "policies"

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m charter.demo", description=__doc__)
    p.add_argument("--policies", type=Path, default=POLICIES, help="policy directory (default: policies/)")
    p.add_argument(
        "--dir",
        type=Path,
        default=Path(".charter/demo"),
        help="where the SQLite state and the trace go (wiped at start; default .charter/demo)",
    )
    p.add_argument("--sidecar", metavar="URL", help="run against a running `charter serve` instead")
    p.add_argument("--token", help="the orchestrator's token for --sidecar")
    p.add_argument(
        "--human",
        action="append",
        default=[],
        metavar="NAME=TOKEN",
        help="a human's token for --sidecar (alice, bob: approvers; olga, peter: operators)",
    )
    p.add_argument("--trace", help="with --sidecar: the sidecar's trace file, to verify it at the end")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; 0 when every step was decided as scripted."""
    from charter.demo.backends import Backend, InProcess, Sidecar
    from charter.demo.render import Out
    from charter.demo.story import Story

    args = _parser().parse_args(argv)
    out = Out()
    backend: Backend
    if args.sidecar:
        if not args.token:
            out.c.print("--sidecar needs --token (the orchestrator's token)")
            return 2
        humans = dict(h.split("=", 1) for h in args.human if "=" in h)
        backend = Sidecar(args.sidecar, args.token, humans, args.trace)
    else:
        import charter

        result = charter.check([args.policies])
        if result.errors or result.policy is None:
            n = len(result.errors)
            out.c.print(f"{args.policies} has {n} error(s); run charter check {args.policies}")
            return 1
        backend = InProcess(args.policies, args.dir)
    try:
        return Story(backend, out).run()
    finally:
        backend.close()
