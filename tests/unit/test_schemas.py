"""The published JSON Schemas in docs/schema/ match the models."""

import importlib.util
from pathlib import Path


def test_schemas_are_current(root: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_schemas", root / "scripts" / "gen_schemas.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, text in mod.schemas().items():
        stale = f"{name} is stale: run scripts/gen_schemas.py"
        assert (root / "docs" / "schema" / name).read_text() == text, stale
