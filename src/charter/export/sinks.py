"""Where exported decision records go: an OTLP/HTTP logs endpoint, or any HTTP endpoint taking JSONL.

A sink sends one batch and says whether it may be retried; it never retries itself (the
exporter's thread does, with backoff). Sinks run on the exporter's thread only.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from charter.errors import Error
from charter.export.mask import encode
from charter.extras import missing_extra

#: Seconds a single send may take before it counts as failed.
SEND_TIMEOUT_S = 5.0
#: HTTP statuses worth retrying (the target is busy or restarting); any other 4xx drops the batch.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class ExportError(Error):
    """A sink URL that cannot be used (unknown scheme, missing extra for OTLP)."""


class SendFailed(ExportError):
    """One send failed; ``retry`` says whether the same batch may be sent again."""

    def __init__(self, message: str, retry: bool):
        super().__init__(message)
        self.retry = retry


class Sink(Protocol):
    """Sends one batch of export records (JSON-ready dicts)."""

    name: str

    def send(self, records: Sequence[dict[str, Any]]) -> None:
        """Send the batch; raise :class:`SendFailed` when it did not arrive."""

    def close(self) -> None:
        """Release connections."""


def _post(url: str, body: bytes, content_type: str, headers: Mapping[str, str], timeout: float) -> None:
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", content_type)
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        raise SendFailed(f"HTTP {exc.code} from {url}", exc.code in RETRY_STATUSES) from None
    except (OSError, TimeoutError) as exc:  # refused, reset, DNS, timeout: the target may come back
        raise SendFailed(f"{type(exc).__name__} sending to {url}: {exc}", True) from None


class JsonlHttpSink:
    """POSTs a batch as JSON Lines (one record per line, ``application/x-ndjson``) to ``url``."""

    def __init__(self, url: str, headers: Mapping[str, str] | None = None, timeout: float = SEND_TIMEOUT_S):
        self.url = url
        self.name = f"jsonl {url}"
        self.headers = dict(headers or {})
        self.timeout = timeout

    def send(self, records: Sequence[dict[str, Any]]) -> None:
        self.send_encoded(records, [encode(r) for r in records])

    def send_encoded(self, records: Sequence[dict[str, Any]], lines: Sequence[str]) -> None:
        """Send a batch whose records are already encoded (``lines[i]`` is ``records[i]``'s JSON)."""
        body = "\n".join(lines) + "\n" if lines else ""
        _post(self.url, body.encode(), "application/x-ndjson", self.headers, self.timeout)

    def close(self) -> None:
        """Nothing to release (one connection per batch)."""


class OtlpLogsSink:
    """Sends a batch as OTLP logs over HTTP/protobuf with OpenTelemetry's OTLPLogExporter (``otel``
    extra): one log record per decision, the record as a JSON body, key fields as attributes."""

    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = SEND_TIMEOUT_S,
        service_name: str = "charter",
    ):
        try:
            from opentelemetry._logs import LogRecord, SeverityNumber
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            from opentelemetry.sdk._logs import ReadableLogRecord
            from opentelemetry.sdk._logs.export import LogRecordExportResult
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        except ImportError as exc:
            raise missing_extra("otel", "the OTLP decision-log export", exc) from exc
        self.name = f"otlp {endpoint}"
        self.endpoint = endpoint
        self._exporter = OTLPLogExporter(endpoint=endpoint, headers=dict(headers or {}), timeout=timeout)
        self._LogRecord = LogRecord
        self._info = SeverityNumber.INFO
        self._warn = SeverityNumber.WARN
        self._Readable = ReadableLogRecord
        self._success = LogRecordExportResult.SUCCESS
        self._resource = Resource.create({"service.name": service_name})
        self._scope = InstrumentationScope("charter.export")

    def _log(self, r: dict[str, Any], body: str | None = None) -> Any:
        ts = int(r.get("time_unix_nano") or time.time_ns())
        decision = r.get("decision", {})
        outcome = str(decision.get("outcome", ""))
        attrs = {
            "charter.decision_id": str(decision.get("id", "")),
            "charter.outcome": outcome,
            "charter.revision": str(decision.get("revision", "")),
            "charter.actor": str(r.get("request", {}).get("actor", {}).get("id", "")),
            "charter.target": str(r.get("request", {}).get("action", {}).get("target", "")),
        }
        log = self._LogRecord(
            timestamp=ts,
            observed_timestamp=ts,
            severity_number=self._info if outcome == "allow" else self._warn,
            severity_text="INFO" if outcome == "allow" else "WARN",
            body=body if body is not None else encode(r),
            attributes=attrs,
            event_name="charter.decision",
        )
        return self._Readable(log_record=log, resource=self._resource, instrumentation_scope=self._scope)

    def send(self, records: Sequence[dict[str, Any]]) -> None:
        self.send_encoded(records, [encode(r) for r in records])

    def send_encoded(self, records: Sequence[dict[str, Any]], lines: Sequence[str]) -> None:
        """Send a batch whose records are already encoded (the log bodies)."""
        try:
            result = self._exporter.export([self._log(r, b) for r, b in zip(records, lines, strict=True)])
        except Exception as exc:  # the SDK raising is a failed send, never a failed decision
            raise SendFailed(
                f"OTLP export to {self.endpoint} raised {type(exc).__name__}: {exc}", True
            ) from None
        if result != self._success:
            raise SendFailed(f"OTLP export to {self.endpoint} failed", True)

    def close(self) -> None:
        self._exporter.shutdown()


def open_sink(spec: str, headers: Mapping[str, str] | None = None) -> Sink:
    """A sink from ``otlp:http(s)://host:4318/v1/logs`` or ``jsonl:http(s)://host/path``."""
    kind, _, url = spec.partition(":")
    if not url.startswith(("http://", "https://")):
        raise ExportError(
            f"export target {spec!r}: write otlp:http(s)://HOST:4318/v1/logs or jsonl:http(s)://HOST/PATH"
        )
    if kind == "otlp":
        return OtlpLogsSink(url, headers)
    if kind == "jsonl":
        return JsonlHttpSink(url, headers)
    raise ExportError(f"export target {spec!r}: unknown kind {kind!r} (otlp or jsonl)")
