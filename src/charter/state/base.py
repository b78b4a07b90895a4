"""The StateStore protocol (atomic operations only) and open_store(url)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from charter.state.types import Batch, BatchResult, CommitResult, GrantRecord, RunState, StopRecord

SCHEMES = ("memory://", "sqlite:///", "redis://", "postgresql://")


@runtime_checkable
class StateStore(Protocol):
    """Budgets, rate limits, run history, stops, idempotency and records; every call atomic."""

    backend: str

    def apply(self, batch: Batch) -> BatchResult:
        """The hot path: idempotency, stops, hits, reservation and event in ONE atomic step."""
        ...

    def remember(self, key: str, payload: str, *, now: float, ttl_s: float) -> str | None:
        """Set-if-absent of a decision payload; returns the existing payload if present."""
        ...

    def commit(self, hold_id: str, actual: int | None, *, now: float) -> CommitResult: ...

    def release(self, hold_id: str, *, now: float) -> bool: ...

    def budget_status(self, keys: Sequence[str], *, now: float) -> dict[str, tuple[int, int]]: ...

    def ledger_total(self, key: str) -> int: ...

    def run_state(self, run_key: str) -> RunState: ...

    def add_labels(self, run_key: str, labels: frozenset[str], *, now: float, ttl_s: float) -> None: ...

    def mark_labels(self, run_key: str, labels: frozenset[str], *, now: float, ttl_s: float) -> None:
        """Add labels to a run, each marked ``LABEL_MARK + label`` at (the run's step count, now)."""
        ...

    def put_result(
        self, run_key: str, decision: str, doc: Mapping[str, Any], *, now: float, ttl_s: float
    ) -> None:
        """Keep a settled call's history detail (its kept result fields) beside its event."""
        ...

    def history_detail(self, run_key: str, limit: int) -> list[dict[str, Any]]:
        """The run's last ``limit`` events, oldest first, each with ``settlement``: the doc
        ``put_result`` kept for its ``decision`` (absent when none was)."""
        ...

    def history(self, run_key: str, limit: int = 100) -> list[dict[str, Any]]: ...

    def begin_grants(
        self,
        run_key: str,
        grants: Sequence[GrantRecord],
        labels: frozenset[str] = frozenset(),
        *,
        now: float,
        ttl_s: float,
    ) -> bool:
        """Store a run's grants and first labels iff it has no grants and no step (False: started);
        the labels arrive (their ``LABEL_MARK`` marks) at step 0 and ``now``."""
        ...

    def narrow_grants(
        self, run_key: str, revoke: Sequence[str], uses: Mapping[str, int], *, now: float
    ) -> tuple[GrantRecord, ...]:
        """Revoke grants or lower their uses (never widen); the run's grants after."""
        ...

    def set_stop(self, rec: StopRecord) -> None: ...

    def clear_stop(self, scope: str, value: str) -> StopRecord | None: ...

    def list_stops(self) -> list[StopRecord]: ...

    def put_record(self, kind: str, id: str, doc: Mapping[str, Any], *, ttl_s: float | None) -> None: ...

    def get_record(self, kind: str, id: str) -> tuple[int, dict[str, Any]] | None: ...

    def cas_record(self, kind: str, id: str, version: int, doc: Mapping[str, Any]) -> bool: ...

    def list_records(self, kind: str) -> list[dict[str, Any]]: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def query_params(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def open_store(url: str) -> StateStore:
    """Open a store from a URL; see docs/state.md for the accepted forms."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        from charter.state.memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite":
        from charter.state.sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    if scheme in ("redis", "rediss", "unix"):
        from charter.state.redis_store import RedisStore

        return RedisStore.from_url(url)
    if scheme in ("postgresql", "postgres"):
        from charter.state.postgres import PostgresStore

        return PostgresStore.from_url(url)
    raise ValueError(
        f"unsupported state store URL {url!r}: accepted schemes are "
        "memory://, sqlite:///abs/path.db (or sqlite:///:memory:), "
        "redis://host:port/db?prefix=charter, postgresql://user@host:port/db?schema=charter"
    )
