"""Writes the JSON Schemas of Request and Decision to docs/schema/ (a test checks they are current)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from charter.engine.decision import DecisionModel
from charter.engine.request import Request

OUT = Path(__file__).resolve().parents[1] / "docs" / "schema"


def schemas() -> dict[str, str]:
    """File name -> schema text."""
    return {
        "request.schema.json": json.dumps(Request.model_json_schema(), indent=2, sort_keys=True) + "\n",
        "decision.schema.json": json.dumps(DecisionModel.model_json_schema(), indent=2, sort_keys=True) + "\n",
    }


def main() -> int:
    """Write the files; with --check, exit 1 when they are out of date."""
    check = "--check" in sys.argv
    stale = []
    for name, text in schemas().items():
        path = OUT / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("out of date: " + ", ".join(stale) + " (run python scripts/gen_schemas.py)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
