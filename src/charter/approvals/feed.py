"""The change mark in the store that tells every sidecar replica's inbox 'something changed: redraw'."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from charter.approvals.ids import random_hex
from charter.state import StateStore

KIND = "inbox-feed"
MARK = "mark"


class ChangeFeed:
    """A notifier that overwrites one small record on every lifecycle event; readers poll it.

    One blind write per event (no compare-and-set: any write changes the mark, so concurrent
    writers cannot lose a change) and one point read per poll, on every store backend.
    INVARIANT: notify() never raises — the mark only hurries a redraw; the inbox also redraws on a
    slow full comparison for writers that do not tell the feed (programs embedding the engine).
    """

    def __init__(self, store: StateStore):
        self.store = store
        self.errors = 0

    def notify(self, kind: str, event: str, record: Mapping[str, Any]) -> None:
        """Move the mark (kind, event and id of what changed ride along for the curious)."""
        doc = {"n": random_hex(8), "kind": kind, "event": event, "id": record.get("id"), "at": time.time()}
        try:
            self.store.put_record(KIND, MARK, doc, ttl_s=None)
        except Exception:  # a store fault is the decision path's business, not the feed's
            self.errors += 1

    def mark(self) -> str | None:
        """The current mark (None before the first change); raises the store's errors."""
        got = self.store.get_record(KIND, MARK)
        return None if got is None else str(got[1].get("n"))
