"""Shared helpers for the Microsoft Agent Governance Toolkit peers."""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

from bench.peers import PeerUnavailable


def agt_import(modname: str) -> ModuleType:
    """Import an AGT module, silencing its 'deprecated alias' warnings."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module(modname)
    except ImportError as ex:
        raise PeerUnavailable(f"agent-governance-toolkit-core not installed ({modname}: {ex})") from ex


def yaml_list(xs: list[str]) -> str:
    """A list literal in PolicyEngine's condition syntax."""
    return "[" + ", ".join(f"'{x}'" for x in xs) + "]"
