"""Notifiers told when an approval or escalation opens, is answered or times out (never blocking)."""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol, TextIO


class Notifier(Protocol):
    """Receives lifecycle events: kind ('approval'|'escalation'|'stop'), event and the record."""

    def notify(self, kind: str, event: str, record: Mapping[str, Any]) -> None: ...


class NullNotifier:
    """Tells no one."""

    def notify(self, kind: str, event: str, record: Mapping[str, Any]) -> None:
        """Do nothing."""


class StdoutNotifier:
    """Prints one line per event."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout

    def notify(self, kind: str, event: str, record: Mapping[str, Any]) -> None:
        """Print the event."""
        who = record.get("group") or record.get("target") or record.get("scope", "")
        print(f"[charter] {kind} {record.get('id', '')} {event} ({who})", file=self.stream)


class WebhookNotifier:
    """POSTs JSON events to a URL from a background thread, with retries and a timeout.

    INVARIANT: notify() only enqueues; a slow or dead webhook never blocks a decision.
    """

    def __init__(
        self,
        url: str,
        timeout_s: float = 2.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_queue: int = 10_000,
    ):
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="charter-webhook", daemon=True)
        self._thread.start()

    def notify(self, kind: str, event: str, record: Mapping[str, Any]) -> None:
        """Queue one event (dropped and counted when the queue is full)."""
        body = json.dumps({"kind": kind, "event": event, "record": dict(record)}, default=str).encode()
        try:
            self._q.put_nowait(body)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            body = self._q.get()
            if body is None:
                return
            for attempt in range(self.retries + 1):
                try:
                    req = urllib.request.Request(
                        self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
                    )
                    with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                        if 200 <= resp.status < 300:
                            self.sent += 1
                            break
                except OSError:
                    pass
                if attempt == self.retries:
                    self.failed += 1
                else:
                    time.sleep(self.backoff_s * (2**attempt))

    def close(self, wait_s: float = 5.0) -> None:
        """Stop after sending what is queued (waits at most wait_s)."""
        self._q.put(None)
        self._thread.join(wait_s)
