"""Suite registry: a suite is a module with DESCRIPTION, run(opts, ui) and render(result, ui)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

# name -> module; later work adds "state", "trace", "sidecar" here.
SUITES: dict[str, str] = {
    "engine": "bench.suites.engine",
    "state": "bench.suites.state",
    "trace": "bench.suites.trace",
    "sidecar": "bench.suites.sidecar",
    "agents": "bench.suites.agents",
}


@dataclass(frozen=True)
class Options:
    """Options shared by all suites (a suite may ignore those it does not use)."""

    quick: bool = False
    json: bool = False
    rules: tuple[int, ...] = (14, 1000, 10000)
    engines: tuple[str, ...] = ()  # empty: all


def load(name: str) -> ModuleType:
    """Import a suite module by its registered name."""
    try:
        return importlib.import_module(SUITES[name])
    except KeyError:
        raise SystemExit(f"unknown suite {name!r}; known: {', '.join(sorted(SUITES))}") from None
