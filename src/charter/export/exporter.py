"""The exporting observer: a bounded queue filled by deciding threads, drained by one sender thread."""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
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
    body = {
        "schema_version": RECORD_VERSION,
        "time_unix_nano": at_ns,
        "decision": d,
        "request": request.to_dict(),
    }
    copied: dict[str, Any] = json.loads(json.dumps(body, default=str))
    return copied


class Exporter(Observer):
    """Exports every finished decision to ``sink``, masked by the policy's ``mask``/``hash`` rules.

    ``policy`` is the policy whose masks apply, or a callable returning the current one (an engine
    whose policy is reloaded: ``lambda: engine.policy``); masks are read when the decision finishes.
    Deciding threads only enqueue (``put_nowait``): a full queue drops the record and counts it.
    The sender thread sends up to ``batch_size`` records at a time, at least every ``flush_s``,
    retrying a failed batch ``retries`` times with exponential backoff from ``backoff_s`` (capped
    at ``max_backoff_s``); a batch that still fails is dropped and counted.
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
            raise ValueError(
                "export: max_queue and batch_size >= 1, retries >= 0, flush_s > 0, backoff_s >= 0"
            )
        self.sink = sink
        self._policy = policy if callable(policy) else (lambda: policy)
        self.masker = masker or Masker()
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.stats = ExportStats()
        self._q: queue.Queue[tuple[Any, Any, int, tuple[MaskRule, ...]] | None] = queue.Queue(max_queue)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._inflight = 0
        self._thread = threading.Thread(target=self._run, name="charter-export", daemon=True)
        self._thread.start()

    # ---- the deciding thread: O(1), never blocks, never raises ---------------------------------
    def decision_finished(self, token: Any, request: ValidRequest, decision: Decision) -> None:
        try:
            self._q.put_nowait((request, decision, time.time_ns(), self._policy().masks))
        except queue.Full:
            with self._lock:
                self.stats.dropped_queue_full += 1
        except Exception:  # an export problem is never a failed decision
            with self._lock:
                self.stats.dropped_queue_full += 1
        else:
            with self._lock:
                self.stats.queued += 1
                self._inflight += 1

    # ---- the sender thread ---------------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._collect()
            if batch:
                self._send(batch)

    def _collect(self) -> tuple[list[tuple[Any, Any, int, tuple[MaskRule, ...]]], bool]:
        """Up to batch_size items, waiting at most flush_s; True when the stop marker was seen."""
        batch: list[tuple[Any, Any, int, tuple[MaskRule, ...]]] = []
        deadline = time.monotonic() + self.flush_s
        while len(batch) < self.batch_size:
            try:
                item = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _records(self, batch: Sequence[tuple[Any, Any, int, tuple[MaskRule, ...]]]) -> list[dict[str, Any]]:
        out = []
        for request, decision, at_ns, masks in batch:
            try:
                out.append(self.masker.apply(build_record(request, decision, at_ns), masks))
            except Exception:  # one unexportable record does not stop the others
                log.exception("charter export: could not build the record of decision %s", decision.id)
        return out

    def _send(self, batch: Sequence[tuple[Any, Any, int, tuple[MaskRule, ...]]]) -> None:
        records = self._records(batch)
        failed = len(batch) - len(records)
        delay = self.backoff_s
        attempt = 0
        while records:
            try:
                self.sink.send(records)
            except SendFailed as exc:
                if not exc.retry or attempt >= self.retries or (self._closed.is_set() and attempt >= 1):
                    log.warning("charter export: dropped %d records (%s)", len(records), exc)
                    failed += len(records)
                    break
                attempt += 1
                with self._lock:
                    self.stats.retries += 1
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            except Exception:
                log.exception("charter export: the sink raised; %d records dropped", len(records))
                failed += len(records)
                break
            with self._lock:
                self.stats.exported += len(records)
                self.stats.batches += 1
            break
        with self._lock:
            self.stats.dropped_send_failed += failed
            self._inflight -= len(batch)
            self._idle.notify_all()

    # ---- control -------------------------------------------------------------------------------
    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued record was sent or dropped; False when ``timeout`` ran out."""
        end = time.monotonic() + timeout
        with self._lock:
            while self._inflight > 0:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout``), stop the thread and close the sink."""
        self.flush(timeout)
        self._closed.set()
        with contextlib.suppress(queue.Full):
            self._q.put(None, timeout=timeout)
        self._thread.join(timeout)
        self.sink.close()

    def metrics(self) -> dict[str, int]:
        """The counters, for /metrics (``charter_export_*``)."""
        with self._lock:
            s = self.stats
            return {
                "queued": s.queued,
                "exported": s.exported,
                "dropped_queue_full": s.dropped_queue_full,
                "dropped_send_failed": s.dropped_send_failed,
                "retries": s.retries,
                "queue_depth": self._q.qsize(),
            }
