"""OpenTelemetry (the `otel` extra): one span per decision, joined to the caller's W3C trace.

Nothing here is imported unless telemetry is turned on (``instrument(engine)``, ``charter serve
--otel`` or ``CHARTER_OTEL=1``), so an engine without it pays nothing: ``instrument`` gives that
one engine a :class:`SpanObserver` (an engine observer, engine/observe.py); nothing is patched.
"""

from __future__ import annotations

import os
import re
from typing import Any

from charter.engine.observe import Observer
from charter.extras import missing_extra

#: A W3C ``traceparent`` (version 00): 00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>.
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16


def w3c_trace_id(value: Any) -> Any:
    """The 32-hex trace id of a ``traceparent``; any other value (a bare trace id, another
    tracing system's id, None) unchanged. What a trace record keeps as its ``trace_id``."""
    if isinstance(value, str):
        m = TRACEPARENT.match(value.strip().lower())
        if m and m.group(1) != _ZERO_TRACE and m.group(2) != _ZERO_SPAN:
            return m.group(1)
    return value


def enabled_by_env() -> bool:
    """True when $CHARTER_OTEL asks for spans (1, true, yes, on)."""
    return os.environ.get("CHARTER_OTEL", "").strip().lower() in ("1", "true", "yes", "on")


def available() -> bool:
    """True when the OpenTelemetry API is installed (the `otel` extra)."""
    import importlib.util

    return importlib.util.find_spec("opentelemetry") is not None


def _parent(trace_id: str | None) -> Any:
    """The OpenTelemetry context of the caller's trace: a full ``traceparent`` is its remote parent
    span; a bare 32-hex trace id makes the span join that trace; anything else: the current context."""
    if not trace_id:
        return None
    from opentelemetry import trace as ot
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    text = trace_id.strip().lower()
    if TRACEPARENT.match(text):
        ctx = TraceContextTextMapPropagator().extract({"traceparent": text})
        return ctx if ot.get_current_span(ctx).get_span_context().is_valid else None
    if TRACE_ID.match(text) and text != _ZERO_TRACE:
        span_id = int.from_bytes(os.urandom(8), "big") or 1
        sc = ot.SpanContext(int(text, 16), span_id, is_remote=True, trace_flags=ot.TraceFlags(1))
        return ot.set_span_in_context(ot.NonRecordingSpan(sc))
    return None


def instrument(engine: Any, tracer: Any = None) -> Any:
    """Give ``engine`` an observer that makes each decision one span ``charter.decide`` with the
    outcome, deciding rule ids, policy revision and latency as attributes (this engine only).

    The span's parent is the request's ``trace_id`` when it is a W3C ``traceparent`` (or a bare
    trace id), else the current OpenTelemetry context; a request without a trace id is given the
    span's ``traceparent``, so the trace record keeps the trace id of the span. Raises
    :class:`charter.extras.MissingExtra` (an ImportError) when the `otel` extra is not installed.
    """
    try:
        from opentelemetry import trace as ot
    except ImportError as exc:
        raise missing_extra("otel", "OpenTelemetry spans", exc) from exc

    if any(isinstance(o, SpanObserver) for o in engine.observers):
        return engine
    return engine.observe(SpanObserver(tracer or ot.get_tracer("charter")))


class SpanObserver(Observer):
    """One OpenTelemetry span per decision, current while the engine decides."""

    def __init__(self, tracer: Any):
        self.tracer = tracer

    def decision_started(self, request: Any) -> Any:
        from opentelemetry import context as otctx
        from opentelemetry import trace as ot

        tid = request.trace_id if isinstance(request.trace_id, str) else None
        span = self.tracer.start_span("charter.decide", context=_parent(tid), kind=ot.SpanKind.INTERNAL)
        if tid is None:
            sc = span.get_span_context()
            if sc.is_valid:
                request.trace_id = f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"
        elif span.is_recording():
            span.set_attribute("charter.request.trace_id", tid)
        return span, otctx.attach(ot.set_span_in_context(span))

    def decision_finished(self, token: Any, request: Any, decision: Any) -> None:
        from opentelemetry import context as otctx
        from opentelemetry import trace as ot

        span, attached = token
        otctx.detach(attached)
        d = decision
        if span.is_recording():
            span.set_attributes(
                {
                    "charter.decision.id": d.id,
                    "charter.outcome": d.outcome.value,
                    "charter.rules": [h.id for h in d.rules],
                    "charter.policy.revision": d.revision,
                    "charter.latency_us": round(float(d.elapsed_us), 1),
                    "charter.default_deny": bool(d.default_deny),
                    "charter.failures": len(d.failures),
                }
            )
            if d.failures:
                span.set_status(ot.Status(ot.StatusCode.ERROR, d.failures[-1].where))
        span.end()

    def decision_failed(self, token: Any, request: Any, error: BaseException) -> None:
        from opentelemetry import context as otctx
        from opentelemetry import trace as ot

        span, attached = token
        otctx.detach(attached)
        if span.is_recording():
            span.record_exception(error)
            span.set_status(ot.Status(ot.StatusCode.ERROR, type(error).__name__))
        span.end()
