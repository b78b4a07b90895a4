"""The decision request a framework adapter builds for one tool call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["tool_call_request"]


def tool_call_request(
    actor: str,
    tool: str,
    args: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
    approval: str | None = None,
) -> dict[str, Any]:
    """``actor`` calls ``tool`` with ``args``; the adapter's ``context`` and, on a resubmission, the
    approval id it was granted under (both only when given)."""
    req: dict[str, Any] = {
        "actor": {"id": actor},
        "action": {"kind": "call", "target": tool, "args": dict(args)},
    }
    if context:
        req["context"] = dict(context)
    if approval:
        req["approval"] = approval
    return req
