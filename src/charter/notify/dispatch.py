"""Delivery: one bounded queue and one worker thread per target, retries with backoff and jitter.

INVARIANT: ``Dispatcher.notify`` only puts on queues (``put_nowait``); a slow, failing or dead
target delays nothing but its own queue, and a full queue drops the notice and counts it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from charter.approvals.ids import random_hex
from charter.notify.message import DEFAULT_EVENTS, Notice, build, event_name
from charter.rand import chance

log = logging.getLogger("charter.notify")
#: what a lane queues: (kind, event, record, at, inbox URL), the arguments of message.build
Event = tuple[str, str, Mapping[str, Any], float, str | None]


class Target(Protocol):
    """Somewhere notices go (webhook, Slack, e-mail)."""

    kind: str

    def body(self, notice: Notice) -> bytes:
        """What is sent, built once per notice (retries send the same bytes)."""
        ...

    def send(self, notice: Notice, msg_id: str, body: bytes) -> None:
        """One delivery attempt; raises on failure."""
        ...


@dataclass
class Retry:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2**n))."""

    attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 60.0

    def delay(self, attempt: int, rng: Callable[[], float] = chance) -> float:
        """Seconds to wait after failed attempt ``attempt`` (0-based)."""
        return rng() * min(self.cap_s, self.base_s * (2**attempt))


@dataclass
class Counters:
    """What happened to one target's notices (exported on /metrics)."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    retried: int = 0


@dataclass
class Lane:
    """One target with its events, retry policy, queue, worker thread and counters."""

    target: Target
    name: str
    events: frozenset[str] = DEFAULT_EVENTS
    retry: Retry = field(default_factory=Retry)
    max_queue: int = 1000
    counters: Counters = field(default_factory=Counters)

    def __post_init__(self) -> None:
        self.queue: queue.Queue[Event | None] = queue.Queue(self.max_queue)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    def count(self, what: str) -> None:
        """Add one to a counter (worker and callers race on them)."""
        with self._lock:
            setattr(self.counters, what, getattr(self.counters, what) + 1)

    def offer(self, event: Event) -> None:
        """Queue an event, or drop and count it when the queue is full (never waits)."""
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.count("dropped")

    def start(self) -> None:
        """Start the worker thread (a daemon: an exiting process does not wait for a dead target)."""
        self.thread = threading.Thread(target=self._run, name=f"charter-notify-{self.name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            event = self.queue.get()
            if event is None:
                return
            try:
                notice = build(*event)
            except Exception:
                log.exception("notification to %s could not be built", self.name)
                self.count("failed")
                continue
            self.deliver(notice)

    def deliver(self, notice: Notice) -> bool:
        """Send with retries; True once delivered (the same message id on every attempt)."""
        msg_id = f"msg_{random_hex(12)}"
        try:
            body = self.target.body(notice)
        except Exception:
            log.exception("notification to %s could not be built", self.name)
            self.count("failed")
            return False
        for attempt in range(self.retry.attempts):
            try:
                self.target.send(notice, msg_id, body)
                self.count("sent")
                return True
            except Exception as exc:  # every failure is retried; the last one is counted
                if attempt + 1 == self.retry.attempts:
                    log.warning("notification %s to %s failed: %s", notice.type, self.name, exc)
                    self.count("failed")
                    return False
                self.count("retried")
                if self._stop.wait(self.retry.delay(attempt)):
                    self.count("failed")  # shutting down: give up rather than hold the exit
                    return False
        return False

    def close(self, wait_s: float) -> None:
        """Stop after what is queued (at most ``wait_s``); pending retries give up."""
        with contextlib.suppress(queue.Full):
            self.queue.put(None, timeout=wait_s)
        if self.thread is not None:
            self.thread.join(wait_s)
        self._stop.set()


class Dispatcher:
    """A notifier (charter.approvals.Notifier) that fans events out to the configured targets."""

    def __init__(
        self, lanes: Sequence[Lane], inbox_url: str | None = None, clock: Callable[[], float] = time.time
    ):
        self.lanes = list(lanes)
        self.inbox_url = inbox_url
        self.clock = clock
        for lane in self.lanes:
            lane.start()

    def notify(self, kind: str, event: str, record: Mapping[str, Any]) -> None:
        """Queue the event for every target that wants it (cheap; never blocks, never raises)."""
        name = event_name(kind, event)
        item: Event | None = None
        for lane in self.lanes:
            if name in lane.events:
                # the notice is built on the lane's thread: here only a shallow copy and a put
                item = item or (kind, event, dict(record), self.clock(), self.inbox_url)
                lane.offer(item)

    def stats(self) -> Iterable[tuple[str, str, Counters]]:
        """(target kind, target name, counters) per target."""
        return [(lane.target.kind, lane.name, lane.counters) for lane in self.lanes]

    def close(self, wait_s: float = 5.0) -> None:
        """Send what is queued (each target at most ``wait_s``), then stop the workers."""
        for lane in self.lanes:
            lane.close(wait_s)
