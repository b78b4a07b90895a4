"""charter.export: decision logs sent out of the process (OTLP logs, HTTP JSONL), masked as the policy says.

An :class:`Exporter` is an engine observer: ``engine.observe(Exporter(sink, engine))``. Deciding
only puts the finished decision on a bounded queue (never blocks, never fails a decision: a full
queue drops and counts); a background thread builds the records, applies the policy's ``mask`` and
``hash`` declarations, and sends them in batches, retried with backoff (docs/export.md).
"""

from charter.export.exporter import Exporter, ExportStats
from charter.export.mask import Masker
from charter.export.sinks import ExportError, JsonlHttpSink, OtlpLogsSink, Sink, open_sink

__all__ = [
    "ExportError",
    "ExportStats",
    "Exporter",
    "JsonlHttpSink",
    "Masker",
    "OtlpLogsSink",
    "Sink",
    "open_sink",
]
