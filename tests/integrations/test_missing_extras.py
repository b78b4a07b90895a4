"""Each adapter, without its framework installed, raises charter.extras.MissingExtra naming its extra."""

from __future__ import annotations

import importlib
import sys

import pytest

from charter.extras import EXTRAS, MissingExtra

#: adapter module -> (the framework module it needs, the extra that brings it)
ADAPTERS = {
    "charter.integrations.ag2": ("ag2", "ag2"),
    "charter.integrations.crewai": ("crewai", "crewai"),
    "charter.integrations.langgraph": ("langgraph", "langgraph"),
    "charter.integrations.openai_agents": ("agents", "openai-agents"),
    "charter.integrations.gateway": ("mcp_types", "mcp"),
}


@pytest.mark.parametrize("module", sorted(ADAPTERS))
def test_adapter_without_its_framework_names_the_extra(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    framework, extra = ADAPTERS[module]
    assert extra in EXTRAS
    # None in sys.modules: `import framework` fails as if the package were not installed
    monkeypatch.setitem(sys.modules, framework, None)
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(MissingExtra) as info:
        importlib.import_module(module)
    err = info.value
    assert err.extra == extra
    assert f"pip install 'charter[{extra}]'" in str(err)
    assert isinstance(err, ImportError) and err.name == framework
