"""Notifiers told when an approval or escalation opens, is answered or times out (never blocking);
webhooks, Slack and e-mail are in charter.notify."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Protocol, TextIO


class Notifier(Protocol):
    """Receives lifecycle events: kind ('approval'|'escalation'|'stop'), event and the record."""

    def notify(self, kind: str, event: str, record: Mapping[str, Any]) -> None: ...


class NullNotifier:
    """Tells no one."""

    def notify(self, kind: str, event: str, record: Mapping[str, Any]) -> None:
        """Do nothing."""


class Fanout:
    """Tells several notifiers in turn; one that raises does not keep the others from hearing."""

    def __init__(self, *notifiers: Notifier):
        self.notifiers = notifiers
        self.errors = 0

    def notify(self, kind: str, event: str, record: Mapping[str, Any]) -> None:
        """Tell each notifier (errors counted, never raised: notifying never blocks a decision)."""
        for n in self.notifiers:
            try:
                n.notify(kind, event, record)
            except Exception:
                self.errors += 1


class StdoutNotifier:
    """Prints one line per event."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout

    def notify(self, kind: str, event: str, record: Mapping[str, Any]) -> None:
        """Print the event."""
        who = record.get("group") or record.get("target") or record.get("scope", "")
        print(f"[charter] {kind} {record.get('id', '')} {event} ({who})", file=self.stream)
