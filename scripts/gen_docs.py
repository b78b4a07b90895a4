"""Write the parts of the docs that are generated from code (run after changing the clause rules).

``python scripts/gen_docs.py`` rewrites them in place; ``--check`` exits 1 when one is stale
(tests/unit/test_docs_from_code.py runs the check).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from charter.compiler.resolve import clause_table

ROOT = Path(__file__).resolve().parents[1]
START = "<!-- clause-table: generated from compiler/resolve.py by scripts/gen_docs.py; do not edit -->\n"
END = "<!-- clause-table: end -->\n"


def sections() -> dict[Path, tuple[str, str]]:
    """Each generated section: file -> (the text now, the text it should be)."""
    path = ROOT / "docs" / "language.md"
    text = path.read_text("utf-8")
    m = re.search(re.escape(START) + r"(.*?)" + re.escape(END), text, re.DOTALL)
    if m is None:
        raise SystemExit(f"{path}: the clause table markers are missing")
    return {path: (m.group(1), clause_table())}


def main(argv: list[str]) -> int:
    """Rewrite (or with --check, compare) every generated section."""
    stale = []
    for path, (now, want) in sections().items():
        if now == want:
            continue
        stale.append(path)
        if "--check" not in argv:
            path.write_text(path.read_text("utf-8").replace(START + now + END, START + want + END), "utf-8")
    if stale and "--check" in argv:
        print("stale (run scripts/gen_docs.py):", *stale)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
