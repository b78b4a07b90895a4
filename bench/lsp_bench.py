"""Language server latency: diagnostics after an edit (policies/ and a 1,000-rule directory) and
completion, measured through a real `charter lsp` process with pygls's client (debounce included).

    .venv/bin/python bench/lsp_bench.py [--edits 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as lsp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lsp.session import Session, pos  # noqa: E402

from bench.parse_bench import policy_text  # noqa: E402

#: Targets in seconds (issue 22): diagnostics after an edit, and completion.
TARGETS = {"policies": 0.150, "rules-1000": 1.0, "completion": 0.050}


def thousand_rules(target: Path) -> Path:
    """A directory of 21 files: declarations, then 1,000 rules in 20 files of 50."""
    text = policy_text(1000)
    head, _, rest = text.partition("\npermit r0 {")
    rest = "permit r0 {" + rest
    blocks = [b for b in rest.split("\n\n") if b.strip()]
    target.mkdir(parents=True)
    (target / "decls.charter").write_text(head)
    for i in range(20):
        part = "\n\n".join(blocks[i * 50 : (i + 1) * 50])
        (target / f"rules{i:02d}.charter").write_text(part + "\n")
    return target / "rules07.charter"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def edits(s: Session, path: Path, needle: str, n: int) -> list[float]:
    """Seconds from each edit to its diagnostics (alternating two texts)."""
    text = path.read_text()
    uri = s.open(path)
    await s.wait_for(uri, 1, timeout=120)
    other = text.replace(needle, needle + "1", 1)
    out = []
    for i in range(n):
        start = time.perf_counter()
        v = s.replace(uri, other if i % 2 == 0 else text)
        await s.wait_for(uri, v, timeout=120)
        out.append(time.perf_counter() - start)
        await asyncio.sleep(0.1)
    return out


async def completions(s: Session, path: Path, needle: str, n: int) -> list[float]:
    text = path.read_text()
    uri = s.open(path)
    await s.wait_for(uri, None, timeout=120)
    doc = lsp.TextDocumentIdentifier(uri=uri)
    position = pos(text, needle, len(needle))
    out = []
    for _ in range(n):
        start = time.perf_counter()
        got = await s.request(
            "textDocument/completion", lsp.CompletionParams(text_document=doc, position=position)
        )
        out.append(time.perf_counter() - start)
        assert got.items
    return out


def measure(root: Path, scenario, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    async def main() -> list[float]:
        s = Session(root)
        await s.start()
        try:
            result: list[float] = await scenario(s, n)
            return result
        finally:
            await s.stop()

    return asyncio.run(main())


def run(n: int) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "policies", work / "policies")
        gates = work / "policies" / "gates.charter"
        big = thousand_rules(work / "big")
        cases = {
            "policies": (work, lambda s, k: edits(s, gates, "args.amount > 10000", k)),
            "rules-1000": (work, lambda s, k: edits(s, big, "args.amount > ", k)),
            "completion": (work, lambda s, k: completions(s, gates, "  when args.", 5 * k)),
        }
        for name, (root, scenario) in cases.items():
            values = measure(root, scenario, n)
            rows[name] = {
                "n": len(values),
                "p50_ms": round(statistics.median(values) * 1000, 1),
                "p95_ms": round(pct(values, 0.95) * 1000, 1),
                "max_ms": round(max(values) * 1000, 1),
                "target_ms": TARGETS[name] * 1000,
            }
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--edits", type=int, default=20)
    args = ap.parse_args()
    rows = run(args.edits)
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
