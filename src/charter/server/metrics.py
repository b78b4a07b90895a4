"""Prometheus metrics of the sidecar, kept as plain counters and rendered in the text format."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from typing import Any

from charter.enums import Outcome

#: Decide latency histogram buckets, seconds.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counters updated on every decision; gauges are read from the store at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.decisions: dict[str, int] = {o.value: 0 for o in Outcome}
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.store_errors = 0
        self.fail_open = 0
        self.timeouts = 0
        self.reloads = 0
        self.reload_failures = 0
        self.rejected: dict[str, int] = {}

    def observe(self, outcome: str, seconds: float, failures: Iterable[Any]) -> None:
        """Count one decision: its outcome, latency and the failure paths it took."""
        with self._lock:
            self.decisions[outcome] = self.decisions.get(outcome, 0) + 1
            self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.latency_sum += seconds
            for f in failures:
                if f.took.startswith("ignore"):
                    self.fail_open += 1
                if f.where == "state store":
                    self.store_errors += 1

    def count(self, name: str, n: int = 1) -> None:
        """Increment a plain counter attribute."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def reject(self, status: int) -> None:
        """Count a request refused before deciding (401, 403, 413, 422, 503 ...)."""
        with self._lock:
            self.rejected[str(status)] = self.rejected.get(str(status), 0) + 1

    def render(
        self,
        *,
        revision: str,
        name: str,
        loaded_at: float,
        pending: int | None,
        stops: int | None,
        reload_error: str | None,
        notifications: Iterable[tuple[str, str, Any]] = (),
        exports: Iterable[tuple[str, dict[str, int]]] = (),
    ) -> str:
        """The text exposition format (version 0.0.4)."""
        out: list[str] = []

        def metric(n: str, kind: str, help_: str, rows: Iterable[tuple[str, float]]) -> None:
            out.append(f"# HELP {n} {help_}")
            out.append(f"# TYPE {n} {kind}")
            out.extend(
                f"{n}{labels} {value:g}" if isinstance(value, float) else f"{n}{labels} {value}"
                for labels, value in rows
            )

        with self._lock:
            metric(
                "charter_decisions_total",
                "counter",
                "Decisions by outcome.",
                [(f'{{outcome="{o}"}}', c) for o, c in sorted(self.decisions.items())],
            )
            cum, rows = 0, []
            for le, c in zip((*BUCKETS, float("inf")), self.buckets, strict=True):
                cum += c
                rows.append((f'{{le="{"+Inf" if le == float("inf") else repr(le)}"}}', cum))
            out.append("# HELP charter_decide_seconds Time to decide, from request body to response.")
            out.append("# TYPE charter_decide_seconds histogram")
            out.extend(f"charter_decide_seconds_bucket{lbl} {v}" for lbl, v in rows)
            out.append(f"charter_decide_seconds_sum {self.latency_sum:.6f}")
            out.append(f"charter_decide_seconds_count {cum}")
            metric(
                "charter_store_errors_total",
                "counter",
                "State store errors (decisions and reads).",
                [("", self.store_errors)],
            )
            metric(
                "charter_fail_open_total",
                "counter",
                "Decisions that took a declared fail-open path (a failure whose mode is ignore).",
                [("", self.fail_open)],
            )
            metric(
                "charter_decide_timeouts_total",
                "counter",
                "Decisions cut by the time limit (503).",
                [("", self.timeouts)],
            )
            metric(
                "charter_rejected_requests_total",
                "counter",
                "Requests refused before deciding.",
                [(f'{{status="{s}"}}', c) for s, c in sorted(self.rejected.items())],
            )
            metric(
                "charter_policy_reloads_total", "counter", "Successful policy reloads.", [("", self.reloads)]
            )
            metric(
                "charter_reload_failures_total",
                "counter",
                "Policy reloads that failed to compile.",
                [("", self.reload_failures)],
            )
        if pending is not None:
            metric(
                "charter_pending_approvals",
                "gauge",
                "Approval requests waiting for approvers.",
                [("", pending)],
            )
        if stops is not None:
            metric("charter_active_stops", "gauge", "Active emergency stops.", [("", stops)])
        notes = list(notifications)
        if notes:
            rows = [
                (f'{{target="{_esc(kind)}",name="{_esc(name)}",result="{what}"}}', getattr(c, what))
                for kind, name, c in notes
                for what in ("sent", "failed", "dropped", "retried")
            ]
            metric(
                "charter_notifications_total",
                "counter",
                "Notifications per target: sent, failed after every retry, dropped (queue full), retried.",
                rows,
            )
        sinks = list(exports)
        if sinks:
            metric(
                "charter_export_records_total",
                "counter",
                "Decision-log records per export target: exported, or dropped (queue full, retries spent).",
                [
                    (f'{{target="{_esc(name)}",result="{what}"}}', m[key])
                    for name, m in sinks
                    for what, key in (
                        ("exported", "exported"),
                        ("dropped_queue_full", "dropped_queue_full"),
                        ("dropped_send_failed", "dropped_send_failed"),
                    )
                ],
            )
            metric(
                "charter_export_retries_total",
                "counter",
                "Batches sent again after a failed send.",
                [(f'{{target="{_esc(name)}"}}', m["retries"]) for name, m in sinks],
            )
            metric(
                "charter_export_queue_depth",
                "gauge",
                "Decision-log records waiting to be sent.",
                [(f'{{target="{_esc(name)}"}}', m["queue_depth"]) for name, m in sinks],
            )
        metric(
            "charter_policy_info",
            "gauge",
            "The policy revision in force.",
            [(f'{{revision="{_esc(revision)}",name="{_esc(name)}"}}', 1)],
        )
        metric(
            "charter_policy_loaded_timestamp_seconds",
            "gauge",
            "When the policy in force was loaded.",
            [("", round(loaded_at, 3))],
        )
        metric(
            "charter_reload_error",
            "gauge",
            "1 while the last reload failed (the last good policy runs).",
            [("", 1 if reload_error else 0)],
        )
        return "\n".join(out) + "\n"
