"""The exporting observer: a bounded queue filled by deciding threads, drained by one sender thread."""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from charter.engine.observe import Observer
from charter.export.mask import Masker
from charter.export.sinks import SendFailed, Sink

if TYPE_CHECKING:
    from charter.engine.decision import Decision
    from charter.engine.policy import CompiledPolicy, MaskRule
    from charter.engine.validate import ValidRequest

log = logging.getLogger("charter.export")

#: Schema version of an export record (docs/export.md).
RECORD_VERSION = 1
#: Seconds between two warnings about dropped batches.
WARN_EVERY_S = 30.0
#: Seconds between two looks of flush() at the sender's progress.
POLL_S = 0.01


@dataclass
class ExportStats:
    """Counters of one exporter (the sidecar's /metrics shows them)."""

    queued: int = 0
    exported: int = 0
    dropped_queue_full: int = 0
    dropped_send_failed: int = 0
    retries: int = 0
    batches: int = 0

    @property
    def dropped(self) -> int:
        """Records that never reached the target."""
        return self.dropped_queue_full + self.dropped_send_failed


def build_record(request: ValidRequest, decision: Decision, at_ns: int) -> dict[str, Any]:
    """The export record of one decision: the request and the decision (its evidence, the values of
    condition sub-expressions, is left out: it would carry argument values past the masks). A deep
    copy: masking edits it."""
    d = decision.to_dict()
    d.pop("evidence", None)
    d.pop("explanation", None)
    req = request.to_dict()
    # to_dict copies the top level of the arguments only; nested maps and lists may be the caller's
    req["action"]["args"] = _plain(req["action"]["args"], 0)
    return {"schema_version": RECORD_VERSION, "time_unix_nano": at_ns, "decision": d, "request": req}


#: Nesting deeper than this is cut (the request validator bounds argument depth well below it).
MAX_COPY_DEPTH = 64


def _plain(value: Any, depth: int) -> Any:
    """A JSON-ready deep copy of validated arguments (what ``json.loads(json.dumps(v, default=str))``
    gives, at a fraction of the cost: the sender thread's CPU is taken from the deciding threads)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if depth >= MAX_COPY_DEPTH:
        return str(value)
    if isinstance(value, Mapping):
        return {
            (
                k if isinstance(k, str) else json.dumps(k) if k is None or isinstance(k, bool) else str(k)
            ): _plain(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    return str(value)


class Exporter(Observer):
    """Exports every finished decision to ``sink``, masked by the policy's ``mask``/``hash`` rules.

    ``policy`` is the policy whose masks apply, or a callable returning the current one (an engine
    whose policy is reloaded: ``lambda: engine.policy``); masks are read when the decision finishes.
    A deciding thread only appends to a bounded buffer (a deque append, atomic under the GIL: no
    lock; it wakes the sender once per full batch); when ``max_queue`` records wait, the record is
    dropped and counted. The sender thread sleeps until a full batch waits and sends up to
    ``batch_size`` records at a time, a partial batch once its first record has waited
    ``flush_s``; a failed batch is retried ``retries`` times with exponential backoff from
    ``backoff_s`` (capped at ``max_backoff_s``),
    then dropped and counted. Records are built and masked on the sender thread.
    """

    def __init__(
        self,
        sink: Sink,
        policy: CompiledPolicy | Callable[[], CompiledPolicy],
        *,
        masker: Masker | None = None,
        max_queue: int = 10_000,
        batch_size: int = 256,
        flush_s: float = 1.0,
        retries: int = 5,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
    ):
        if max_queue < 1 or batch_size < 1 or retries < 0 or flush_s <= 0 or backoff_s < 0:
            raise ValueError("export: max_queue, batch_size >= 1; retries, backoff_s >= 0; flush_s > 0")
        self.sink = sink
        self._policy = policy if callable(policy) else (lambda: policy)
        self.masker = masker or Masker()
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._buf: collections.deque[tuple[Any, Any, int, tuple[MaskRule, ...]]] = collections.deque()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stats = ExportStats()  # dropped_queue_full under the lock; the rest the sender's
        self._taken = 0  # records the sender took from the buffer (written by the sender only)
        self._done = 0  # ... and has sent or dropped
        self._stopping = threading.Event()
        #: set by a deciding thread when a full batch waits, by flush() and close()
        self._wake = threading.Event()
        self._urgent = False  # flush(): send a partial batch now
        self._last_warning = 0.0
        self._thread = threading.Thread(target=self._run, name="charter-export", daemon=True)
        self._thread.start()

    # ---- the deciding thread: O(1), never blocks, never raises ---------------------------------
    def decision_finished(self, token: Any, request: ValidRequest, decision: Decision) -> None:
        try:
            buf = self._buf
            if len(buf) < self.max_queue:
                buf.append((request, decision, time.time_ns(), self._policy().masks))
                if len(buf) % self.batch_size == 0:  # once per batch: a full batch wakes the sender
                    self._wake.set()
                return
        except Exception:  # an export problem is never a failed decision
            log.debug("charter export: could not queue decision %s", decision.id, exc_info=True)
        with self._lock:
            self._stats.dropped_queue_full += 1

    # ---- the sender thread ---------------------------------------------------------------------
    def _run(self) -> None:
        # The sender sleeps until a full batch is waiting (the deciding thread wakes it, once per
        # batch) or the oldest waiting record is flush_s old. It does not poll: every wake-up of a
        # second thread is a GIL hand-off the deciding threads pay for, and on a busy machine a
        # hand-off waits for the OS to schedule the thread that gets the GIL back.
        waiting_since: float | None = None
        while True:
            n = len(self._buf)
            stopping = self._stopping.is_set()
            if n == 0:
                if stopping:
                    return
                waiting_since = None
                self._wake.clear()
                if not self._buf and not self._stopping.is_set():
                    self._wake.wait(self.flush_s)
                continue
            now = time.monotonic()
            if waiting_since is None:
                waiting_since = now
            due = stopping or self._urgent or now - waiting_since >= self.flush_s
            if n < self.batch_size and not due:
                self._wake.clear()
                if len(self._buf) < self.batch_size and not self._urgent:
                    self._wake.wait(max(0.0, self.flush_s - (now - waiting_since)))
                continue
            self._urgent = False
            k = min(n, self.batch_size)
            self._taken += k  # first: flush() must never see an empty buffer and nothing in flight
            batch = [self._buf.popleft() for _ in range(k)]
            waiting_since = None if len(self._buf) == 0 else time.monotonic()
            self._send(batch)

    def _records(
        self, batch: Sequence[tuple[Any, Any, int, tuple[MaskRule, ...]]]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        records: list[dict[str, Any]] = []
        lines: list[str] = []
        for request, decision, at_ns, masks in batch:
            try:
                record = build_record(request, decision, at_ns)
                lines.append(self.masker.encode(record, masks))
                records.append(record)
            except Exception:  # one unexportable record does not stop the others
                log.exception("charter export: could not build the record of decision %s", decision.id)
                del lines[len(records) :]
        return records, lines

    def _send(self, batch: Sequence[tuple[Any, Any, int, tuple[MaskRule, ...]]]) -> None:
        records, lines = self._records(batch)
        failed = len(batch) - len(records)
        delay = self.backoff_s
        attempt = 0
        # a sink that takes the records' JSON (both of charter's) is given the text encoded while
        # masking, instead of encoding every record a second time
        send_encoded = getattr(self.sink, "send_encoded", None)
        while records:
            try:
                if send_encoded is not None:
                    send_encoded(records, lines)
                else:
                    self.sink.send(records)
            except SendFailed as exc:
                # while closing, one retry at most: close() must not wait out a long backoff
                if not exc.retry or attempt >= self.retries or (self._stopping.is_set() and attempt >= 1):
                    self._warn("dropped %d records (%s)", len(records), exc)
                    failed += len(records)
                    break
                attempt += 1
                with self._lock:
                    self._stats.retries += 1
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            except Exception:
                log.exception("charter export: the sink raised; %d records dropped", len(records))
                failed += len(records)
                break
            with self._lock:
                self._stats.exported += len(records)
                self._stats.batches += 1
            break
        with self._lock:
            self._stats.dropped_send_failed += failed
            self._done += len(batch)
            self._idle.notify_all()

    def _warn(self, msg: str, *args: Any) -> None:
        """A warning at most every WARN_EVERY_S seconds (a target that is down drops every batch)."""
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            log.warning("charter export to %s: " + msg, self.sink.name, *args)

    # ---- control -------------------------------------------------------------------------------
    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued record was sent or dropped; False when ``timeout`` ran out."""
        end = time.monotonic() + timeout
        self._urgent = True
        self._wake.set()
        with self._lock:
            while self._buf or self._done < self._taken:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, POLL_S))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout``), stop the thread and close the sink."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        self.sink.close()

    @property
    def stats(self) -> ExportStats:
        """A snapshot of the counters."""
        with self._lock:
            s = self._stats
            return ExportStats(
                queued=self._taken + len(self._buf),
                exported=s.exported,
                dropped_queue_full=s.dropped_queue_full,
                dropped_send_failed=s.dropped_send_failed,
                retries=s.retries,
                batches=s.batches,
            )

    def metrics(self) -> dict[str, int]:
        """The counters, for /metrics (``charter_export_*``)."""
        s = self.stats
        return {
            "queued": s.queued,
            "exported": s.exported,
            "dropped_queue_full": s.dropped_queue_full,
            "dropped_send_failed": s.dropped_send_failed,
            "retries": s.retries,
            "queue_depth": len(self._buf),
        }
