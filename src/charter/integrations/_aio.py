"""Deciding and settling from async adapters without blocking the event loop, whatever the backend."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping
from typing import Any

from charter.engine.decision import Decision

__all__ = ["adecide", "asettle"]


async def adecide(backend: Any, request: Mapping[str, Any]) -> Decision:
    """Decide on ``backend``: an :class:`charter.client.AsyncClient` is awaited, an Engine uses
    its ``adecide`` (inline for an in-memory store), a sync client runs in a worker thread."""
    decide = backend.decide
    if inspect.iscoroutinefunction(decide):
        return await decide(request)
    adecide_ = getattr(backend, "adecide", None)
    if adecide_ is not None:
        return await adecide_(request)
    return await asyncio.to_thread(decide, request)


async def asettle(backend: Any, decision_id: str, **kw: Any) -> Any:
    """Settle on ``backend`` the same way (an Engine settles inline: no store round trip for
    the in-memory store, one short store call otherwise)."""
    settle = backend.settle
    if inspect.iscoroutinefunction(settle):
        return await settle(decision_id, **kw)
    from charter.engine.engine import Engine

    if isinstance(backend, Engine):
        from charter.state.memory import MemoryStore

        if isinstance(backend.store, MemoryStore):
            return settle(decision_id, **kw)
    return await asyncio.to_thread(lambda: settle(decision_id, **kw))
