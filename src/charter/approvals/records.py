"""Compare-and-set updates of lifecycle records in the state store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from charter.approvals.errors import HumanError
from charter.approvals.identity import Channel
from charter.state import StateStore

#: Records of gates, escalations and resumes are kept this long (seconds).
RECORD_TTL_S = 30 * 86400.0


def update(
    store: StateStore,
    kind: str,
    rid: str,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    attempts: int = 20,
) -> dict[str, Any]:
    """Apply ``change`` to a record atomically (compare-and-set, retried on a concurrent write).

    ``change`` gets a copy of the current document and returns the new one, or raises HumanError.
    """
    for _ in range(attempts):
        got = store.get_record(kind, rid)
        if got is None:
            raise HumanError(f"no {kind} with id {rid!r}", "unknown")
        version, doc = got
        new = change(dict(doc))
        if new == doc:
            return doc
        if store.cas_record(kind, rid, version, new):
            return new
    raise HumanError(f"{kind} {rid} is being changed by someone else; try again", "conflict")


def read(
    store: StateStore, kind: str, rid: str, refresh: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """One record brought up to date by ``refresh`` (expiry, escalation steps); unknown ids raise."""
    got = store.get_record(kind, rid)
    if got is None:
        raise HumanError(f"no {kind} with id {rid!r}", "unknown")
    return refresh(got[1])


def read_all(
    store: StateStore, kind: str, status: str | None, refresh: Callable[[dict[str, Any]], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every record of a kind brought up to date, newest first, optionally of one status."""
    docs = [refresh(d) for d in store.list_records(kind)]
    if status:
        docs = [d for d in docs if d["status"] == status]
    return sorted(docs, key=lambda d: d["created_at"], reverse=True)


def history(
    doc: dict[str, Any],
    at: float,
    event: str,
    by: str | None = None,
    note: str = "",
    via: Channel | None = None,
) -> None:
    """Append one entry to a record's status history (``via``: the channel a person acted through)."""
    entry: dict[str, Any] = {"at": at, "event": event, "by": by, "note": note}
    if via is not None:
        entry["via"] = via.value
    doc["history"] = [*doc.get("history", []), entry]
