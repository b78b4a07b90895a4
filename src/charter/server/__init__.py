"""The charter sidecar: decisions, settlements, approvals and stops over HTTP (see docs/sidecar.md).

The names below are imported on first use, so that ``charter.server.cli`` (the ``charter serve``
command, registered with every ``charter`` invocation) loads without the ``server`` extra; using
one of them without the extra raises :class:`charter.extras.MissingExtra` naming it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from charter.server.app import Sidecar, create_app
    from charter.server.auth import Principal, TokenSet, load_tokens
    from charter.server.runtime import Runtime, ServeConfig

__all__ = ["Principal", "Runtime", "ServeConfig", "Sidecar", "TokenSet", "create_app", "load_tokens"]

_HOMES = {
    "Sidecar": "charter.server.app",
    "create_app": "charter.server.app",
    "Principal": "charter.server.auth",
    "TokenSet": "charter.server.auth",
    "load_tokens": "charter.server.auth",
    "Runtime": "charter.server.runtime",
    "ServeConfig": "charter.server.runtime",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'charter.server' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
