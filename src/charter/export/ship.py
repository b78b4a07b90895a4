"""The trace shipper: decision logs sent from the trace log by another process, verified and masked.

The deciding process only writes its trace (which it does anyway); a :class:`Shipper` in another
process reads the records after a durable cursor, checks each against the hash chain as ``charter
trace verify`` does, builds the export record, applies the policy's ``mask``/``hash`` declarations
with the exporter's :class:`~charter.export.mask.Masker`, and sends batches through the exporter's
sinks, retrying a target that is down for as long as it takes (docs/export.md).

Delivery is at least once: the cursor (seq and hash of the last acknowledged record) is written
after each batch the target acknowledged, so a shipper killed between the acknowledgement and the
write sends that one batch again when restarted; nothing is skipped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.errors import Error
from charter.export.exporter import RECORD_VERSION
from charter.export.mask import Masker
from charter.export.sinks import SendFailed, Sink
from charter.trace.record import GENESIS, index_problem
from charter.trace.sink import Reader, StoredRow, display, open_reader
from charter.trace.verify import verify_rows

if TYPE_CHECKING:
    from charter.engine.policy import MaskRule

log = logging.getLogger("charter.export.ship")

#: Seconds between two looks at the stop flag while waiting.
STOP_POLL_S = 0.05
#: Seconds between two warnings about a target that is down.
WARN_EVERY_S = 30.0
#: The fields of a trace decision record that make the export record's ``decision`` (the
#: ``evidence`` is left out as the in-process exporter leaves it out: it may quote arguments).
DECISION_FIELDS = (
    "id",
    "outcome",
    "rules",
    "default_deny",
    "boundaries",
    "shadow",
    "failures",
    "obligations",
)


class ShipError(Error):
    """The shipper cannot go on: a cursor that does not match the trace, a target that refuses."""


@dataclass
class ShipStats:
    """What one run of the shipper did (``charter trace ship --format json`` prints it)."""

    trace: str = ""
    target: str = ""
    shipped: int = 0
    events_skipped: int = 0
    batches: int = 0
    retries: int = 0
    first_seq: int | None = None
    cursor_seq: int = 0
    refused: str | None = None
    error: str | None = None
    stopped: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        d["ok"] = self.refused is None and self.error is None
        return d


def export_record(rec: dict[str, Any], seq: int, h: str) -> dict[str, Any]:
    """The export record (docs/export.md, the in-process exporter's shape) of a trace decision
    record, with ``trace`` (seq, hash) added: a receiver can de-duplicate a re-sent batch by it."""
    decision: dict[str, Any] = {"schema_version": 1}
    decision.update({k: rec.get(k) for k in DECISION_FIELDS})
    decision["revision"] = rec.get("revision")
    decision["elapsed_us"] = rec.get("latency_us")
    return {
        "schema_version": RECORD_VERSION,
        "time_unix_nano": round(float(rec["at"]) * 1e9),
        "decision": decision,
        "request": rec["request"],
        "trace": {"seq": seq, "hash": h},
    }


#: A cursor file is one small JSON object; anything longer is not one (and is never parsed).
MAX_CURSOR_BYTES = 4096


class Cursor:
    """The last shipped record (seq and hash) in a small JSON file, replaced atomically; without a
    path it lives in memory only (a restart starts from the first record)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None

    def load(self) -> tuple[int, str]:
        """(seq, hash) of the last shipped record, or (0, GENESIS) when nothing was shipped."""
        if self.path is None or not self.path.exists():
            return 0, GENESIS
        try:
            with open(self.path, "rb") as f:
                raw = f.read(MAX_CURSOR_BYTES + 1)
            if len(raw) > MAX_CURSOR_BYTES:
                raise ValueError(f"more than {MAX_CURSOR_BYTES} bytes")
            data = json.loads(raw.decode("utf-8"))
            seq, h = data["seq"], data["hash"]
            # Exact types: int(1e400) overflows, int(True) / int("5") / int(1.5) would silently
            # move the cursor somewhere it never was.
            if type(seq) is not int or seq < 0 or not isinstance(h, str) or (seq == 0) != (h == GENESIS):
                raise ValueError(f"seq {seq!r} / hash {h!r} is not a position in a trace")
            return seq, h
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise ShipError(f"cursor {self.path} is not a shipper cursor: {exc}") from None

    def save(self, seq: int, h: str, trace: str) -> None:
        """Write (seq, hash) durably: a temporary file, fsync, rename over the old one."""
        if self.path is None:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"seq": seq, "hash": h, "trace": trace, "at": time.time()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class Shipper:
    """Ships the decision records of the trace at ``trace`` to ``sink``, masked by ``masks``.

    Rows are read ``batch_size`` at a time after the cursor (one batch in memory at most) and
    verified against the chain from the cursor's (seq, hash); the verified prefix is shipped and
    the first row that fails is refused (``stats.refused``; the run stops, the cursor stays before
    it). Event records (settlements, approvals) are passed over, as the in-process exporter sends
    decisions only. A failed send that may be retried is sent again after ``backoff_s``, doubling
    up to ``max_backoff_s``, until it arrives, :meth:`stop` is called, or ``give_up_s`` seconds of
    failures have passed; a send the target refuses (a 4xx other than 408/425/429) stops the run.
    """

    def __init__(
        self,
        trace: str,
        sink: Sink,
        masks: Sequence[MaskRule] | Callable[[], Sequence[MaskRule]],
        *,
        masker: Masker | None = None,
        cursor: str | Path | None = None,
        batch_size: int = 256,
        poll_s: float = 1.0,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        give_up_s: float | None = None,
    ):
        if batch_size < 1 or poll_s <= 0 or backoff_s < 0:
            raise ValueError("ship: batch_size >= 1, poll_s > 0, backoff_s >= 0")
        self.trace = trace
        self.sink = sink
        self._masks = masks if callable(masks) else (lambda: tuple(masks))
        self.masker = masker or Masker()
        self.cursor = Cursor(cursor)
        self.batch_size = batch_size
        self.poll_s = poll_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.give_up_s = give_up_s
        self.stats = ShipStats(trace=display(trace), target=sink.name)
        # a plain flag, polled: stop() runs in signal handlers, where setting a threading.Event
        # can deadlock (the handler may interrupt the main thread inside Event.wait, holding its lock)
        self._stopping = False
        self._last_warning = 0.0
        self._head = GENESIS  # hash of the last shipped record

    def stop(self) -> None:
        """Stop after the batch in flight (a signal handler may call it); the cursor is kept."""
        self._stopping = True

    # ---- the loop ------------------------------------------------------------------------------
    def run(self, follow: bool = False) -> ShipStats:
        """Ship until caught up (``follow``: until stopped, polling every ``poll_s``)."""
        t0 = time.monotonic()
        reader: Reader | None = None
        try:
            pos = self.cursor.load()
            self.stats.cursor_seq = pos[0]
            while not self._stopping:
                try:
                    if reader is None:
                        reader = open_reader(self.trace)
                        self._check_cursor(reader, pos)
                    checkpoints = reader.checkpoints()
                    rows = reader.batch(pos[0], self.batch_size)
                except ShipError:
                    raise
                except Exception as exc:  # not there yet, being created, server down: wait (follow)
                    if not follow:
                        raise ShipError(f"cannot read the trace {display(self.trace)}: {exc}") from None
                    self._warn(
                        "cannot read the trace %s (%s: %s)", display(self.trace), type(exc).__name__, exc
                    )
                    if reader is not None:
                        with contextlib.suppress(Exception):
                            reader.close()
                        reader = None
                    self._sleep(self.poll_s)
                    continue
                if not rows:
                    if not follow:
                        break
                    self._sleep(self.poll_s)
                    continue
                good, parsed, problem = self._verified(rows, pos, checkpoints)
                if good:
                    if not self._ship(good, parsed):
                        break
                    pos = (self.stats.cursor_seq, self._head)
                if problem is not None:
                    self.stats.refused = problem
                    log.error("charter trace ship: refused, not shipped: %s", problem)
                    break
        except (ShipError, FileNotFoundError, OSError, Error) as exc:
            self.stats.error = str(exc)
        finally:
            self.stats.stopped = self._stopping
            self.stats.seconds = time.monotonic() - t0
            if reader is not None:
                with contextlib.suppress(Exception):
                    reader.close()
        return self.stats

    def _check_cursor(self, reader: Reader, pos: tuple[int, str]) -> None:
        """The cursor's record must be in this trace with the hash the cursor remembers."""
        self._head = pos[1]
        if pos[0] == 0:
            return
        rows = reader.batch(pos[0] - 1, 1)
        if not rows or rows[0][0] != pos[0] or rows[0][2] != pos[1]:
            raise ShipError(
                f"cursor {self.cursor.path} (record {pos[0]}) does not match the trace "
                f"{display(self.trace)}: "
                "another trace, or records were removed or rewritten (run charter trace verify)"
            )

    @staticmethod
    def _verified(
        rows: Sequence[StoredRow], pos: tuple[int, str], checkpoints: Sequence[dict[str, Any]] = ()
    ) -> tuple[Sequence[StoredRow], list[dict[str, Any]], str | None]:
        """The verified prefix of ``rows`` (continuing the chain at ``pos``), their parsed bodies,
        and why the first row after that prefix is refused (None when every row is good). The
        checks are the trace's own: the chain rule and the signed checkpoints of ``charter trace
        verify`` (verify_rows; the checkpoints whose length falls in these rows), then each row's
        index columns against its body as every trace read does (index_problem), each body parsed
        once. On a broken link the record before it is held back too: its own hash may be the
        one that was rewritten."""
        last = rows[-1][0]
        cps = [c for c in checkpoints if pos[0] < int(c["length"]) <= last]
        report = verify_rows([r[:4] for r in rows], cps, after=pos)
        if report.problems:
            bad = report.records - 1  # the index of the row that failed (the first problem is its)
            if "checkpoint" in report.problems[0]:
                # a checkpoint inside these rows does not match: nothing up to it is trusted
                bad = 0
            elif "does not follow" in report.problems[0] and bad > 0:
                bad -= 1
            good = rows[:bad]
        else:
            good = rows
        parsed: list[dict[str, Any]] = []
        for i, (seq, _prev, _h, body, index) in enumerate(good):
            try:
                rec = json.loads(body)
            except ValueError:
                rec = None
            if not isinstance(rec, dict):
                return good[:i], parsed, f"record {seq} has a body that is not a trace record"
            problem = index_problem(seq, body, index, rec)
            if problem is not None:
                return good[:i], parsed, problem
            parsed.append(rec)
        return good, parsed, report.problems[0] if report.problems else None

    def _ship(self, rows: Sequence[StoredRow], parsed: Sequence[dict[str, Any]]) -> bool:
        """Send the decision records of ``rows`` (``parsed``: their bodies) until acknowledged, then
        move the cursor past them. False when stopped or given up before the target acknowledged
        them (the cursor is unchanged)."""
        masks = self._masks()
        records: list[dict[str, Any]] = []
        lines: list[str] = []
        for (seq, _prev, h, _body, _index), rec in zip(rows, parsed, strict=True):
            if rec.get("kind") != "decision":
                self.stats.events_skipped += 1
                continue
            record = export_record(rec, seq, h)
            lines.append(self.masker.encode(record, masks))
            records.append(record)
        if records and not self._send(records, lines):
            return False
        last_seq, last_hash = rows[-1][0], rows[-1][2]
        self.cursor.save(last_seq, last_hash, display(self.trace))
        if self.stats.first_seq is None:
            self.stats.first_seq = rows[0][0]
        self.stats.cursor_seq, self._head = last_seq, last_hash
        self.stats.shipped += len(records)
        self.stats.batches += 1 if records else 0
        return True

    def _send(self, records: list[dict[str, Any]], lines: list[str]) -> bool:
        delay = self.backoff_s
        failing_since: float | None = None
        send_encoded = getattr(self.sink, "send_encoded", None)
        while True:
            try:
                if send_encoded is not None:
                    send_encoded(records, lines)
                else:
                    self.sink.send(records)
                return True
            except SendFailed as exc:
                if not exc.retry:
                    raise ShipError(f"the target refused a batch: {exc}") from None
                now = time.monotonic()
                failing_since = failing_since if failing_since is not None else now
                if self.give_up_s is not None and now - failing_since >= self.give_up_s:
                    self.stats.error = f"gave up after {self.give_up_s:g} s of failed sends: {exc}"
                    return False
                self.stats.retries += 1
                self._warn("retrying in %.1f s (%s)", delay, exc)
                if self._sleep(delay):
                    return False
                delay = min(max(delay * 2, 0.01), self.max_backoff_s)

    def _sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, in short steps that look at the stop flag; True when stopped."""
        end = time.monotonic() + seconds
        while not self._stopping:
            left = end - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, STOP_POLL_S))
        return self._stopping

    def _warn(self, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            log.warning("charter trace ship to %s: " + msg, self.sink.name, *args)
