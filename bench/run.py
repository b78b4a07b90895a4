"""Benchmark entry point: `python bench/run.py --suite engine [--quick] [--json] [--rules ...]`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)  # run as a script: import `bench.*` from the repo root
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import suites  # noqa: E402
from bench.ui import UI  # noqa: E402


def parse_rules(text: str) -> tuple[int, ...]:
    """`14,1000,10000` -> (14, 1000, 10000)."""
    try:
        vals = tuple(int(x.replace("_", "")) for x in text.split(",") if x.strip())
    except ValueError as ex:
        raise argparse.ArgumentTypeError(f"bad --rules {text!r}: {ex}") from ex
    if not vals or min(vals) < 14:
        raise argparse.ArgumentTypeError("--rules values must be >= 14")
    return vals


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the suite, print a table or one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--suite", default="engine", choices=sorted(suites.SUITES))
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small samples (< 60 s); third-party peers skipped at 10,000 rules",
    )
    ap.add_argument("--json", action="store_true", help="print exactly one JSON object")
    ap.add_argument(
        "--rules",
        type=parse_rules,
        default=(14, 1000, 10000),
        help="policy sizes, comma-separated (default 14,1000,10000)",
    )
    ap.add_argument("--engines", default="", help="comma-separated engine ids to run (default: all)")
    ap.add_argument("--plain", action="store_true", help="plain text output, no rich")
    ap.add_argument("--save", metavar="PATH", help="also write the JSON object to PATH")
    ap.add_argument("--load", metavar="PATH", help="do not run: render a result saved with --save")
    ap.add_argument(
        "--markdown",
        action="store_true",
        help="print Markdown tables (for docs/performance.md) instead of the table",
    )
    args = ap.parse_args(argv)
    opts = suites.Options(
        quick=args.quick,
        json=args.json,
        rules=args.rules,
        engines=tuple(e for e in args.engines.split(",") if e),
    )
    ui = UI(plain=args.plain, quiet=args.json)
    suite = suites.load(args.suite)
    if args.load:
        result = json.loads(Path(args.load).read_text(encoding="utf-8"))
        suite = suites.load(result["suite"])
    else:
        t0 = time.perf_counter()
        result = suite.run(opts, ui)
        result["runtime_s"] = round(time.perf_counter() - t0, 1)
    if args.save:
        Path(args.save).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    if args.json:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
    elif args.markdown and hasattr(suite, "markdown"):
        print(suite.markdown(result))
    else:
        suite.render(result, ui)
        ui.note(f"total runtime {result['runtime_s']:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
