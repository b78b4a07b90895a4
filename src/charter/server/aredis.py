"""Redis without a thread per decision: the sync engine's Redis commands await redis.asyncio (greenlet).

The engine is synchronous: it calls ``store.apply(batch)`` (one EVALSHA of the store's Lua script)
in the middle of ``decide``. Under the sidecar, :meth:`RedisBridge.run` runs ``decide`` in a
greenlet on the event loop; the store's Redis client (:class:`BridgedRedis`, handed to the ordinary
:class:`~charter.state.redis_store.RedisStore`) sends each command through ``redis.asyncio`` and
switches back to the loop while the answer is on its way, so other requests are served meanwhile.
Same scripts, same keys, same arguments, same exceptions (redis.exceptions, mapped to StoreError
by the store as before); outside :meth:`RedisBridge.run` (settle, approvals, readiness on the thread
pool) the client is the plain synchronous one.

Without the ``greenlet`` package, :func:`open_bridged` returns None and the sidecar keeps the thread pool.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from charter.extras import missing_extra

try:
    import redis
    import redis.asyncio
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.client import Pipeline
    from redis.retry import Retry
except ImportError as _exc:  # an optional dependency: name the extra to install
    raise missing_extra("redis", "the sidecar's Redis client", _exc) from _exc

from charter.state.base import query_params
from charter.state.redis_store import RedisStore

try:
    import greenlet
except ImportError:  # optional: without it the sidecar runs Redis calls on its thread pool
    greenlet = None

T = TypeVar("T")


def available() -> bool:
    """True when the greenlet package is installed."""
    return greenlet is not None


def _in_bridge() -> bool:
    return greenlet is not None and isinstance(greenlet.getcurrent(), _Bridged)


if greenlet is not None:

    class _Bridged(greenlet.greenlet):
        """A greenlet running sync code for :meth:`RedisBridge.run`; ``driver`` awaits for it."""

        driver: Any = None
else:  # pragma: no cover - exercised only without greenlet

    class _Bridged:  # type: ignore[no-redef]
        driver: Any = None


def await_only(awaitable: Awaitable[T]) -> T:
    """From sync code inside :meth:`RedisBridge.run`: wait for ``awaitable`` on the event loop."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged):
        close = getattr(awaitable, "close", None)
        if close is not None:  # a coroutine that will never run: no "never awaited" warning
            close()
        raise RuntimeError("await_only outside RedisBridge.run")
    return current.driver.switch(awaitable)


class _BridgedPipeline(Pipeline):
    """A pipeline whose ``execute`` goes through redis.asyncio inside :meth:`RedisBridge.run`."""

    aio: Any = None

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        if self.aio is None or not _in_bridge() or self.watching:
            return super().execute(raise_on_error)
        stack, self.command_stack = self.command_stack, []
        try:

            async def go() -> list[Any]:
                async with self.aio.pipeline(transaction=self.transaction) as ap:
                    for args, options in stack:
                        ap.execute_command(*args, **options)
                    return list(await ap.execute(raise_on_error))

            return await_only(go())
        finally:
            self.reset()


class BridgedRedis(redis.Redis):
    """redis.Redis whose commands await ``aio`` (a redis.asyncio client) inside :meth:`RedisBridge.run`."""

    aio: Any = None

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.aio is not None and _in_bridge():
            return await_only(self.aio.execute_command(*args, **options))
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        p = _BridgedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        p.aio = self.aio
        return p


class RedisBridge:
    """Owns the asyncio Redis client of one event loop and runs sync engine calls against it."""

    def __init__(self, client: BridgedRedis, base_url: str, options: dict[str, Any]):
        self.client = client
        self.base_url = base_url
        self.options = options

    async def start(self) -> None:
        """Open the asyncio client on the running loop (the sidecar's lifespan)."""
        if self.client.aio is None:
            self.client.aio = redis.asyncio.Redis.from_url(
                self.base_url, retry=AsyncRetry(NoBackoff(), 0), **self.options
            )

    async def stop(self) -> None:
        """Close the asyncio client; later calls use the synchronous client."""
        aio, self.client.aio = self.client.aio, None
        if aio is not None:
            await aio.aclose()

    @property
    def active(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self.client.aio is not None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on this loop; each Redis command it sends is awaited, not blocked on."""
        child = _Bridged(fn, greenlet.getcurrent())
        child.driver = greenlet.getcurrent()
        step = child.switch(*args)
        while not child.dead:
            try:
                value = await step
            except BaseException:
                step = child.throw(*sys.exc_info())
            else:
                step = child.switch(value)
        return step


def open_bridged(url: str) -> tuple[RedisStore, RedisBridge] | None:
    """For a redis:// URL with greenlet installed: the store (as ``open_store`` builds it) and its bridge.

    The client options mirror ``RedisStore.from_url``: ``timeout`` (socket), ``connect_timeout``,
    ``prefix``, no retries (a non-idempotent script is never sent twice), decoded responses.
    """
    if greenlet is None or urlsplit(url).scheme.lower() not in ("redis", "rediss", "unix"):
        return None
    q = query_params(url)
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    timeout = float(q.get("timeout", "2.0"))
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": timeout,
        "socket_connect_timeout": float(q.get("connect_timeout", str(timeout))),
        "retry_on_timeout": False,
    }
    client = BridgedRedis.from_url(base, retry=Retry(NoBackoff(), 0), **options)
    assert isinstance(client, BridgedRedis)  # from_url is a classmethod: cls(...)
    return RedisStore(client, q.get("prefix", "charter")), RedisBridge(client, base, options)
