"""OpenTelemetry (the `otel` extra): one span per decision, joined to the caller's W3C trace.

Nothing here is imported unless telemetry is turned on (``instrument(engine)``, ``charter serve
--otel`` or ``CHARTER_OTEL=1``), so an engine without it pays nothing: ``instrument`` wraps the
engine's ``decide`` on that one instance and leaves the class untouched.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

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


def _trace_id_of(request: Any) -> str | None:
    tid = request.get("trace_id") if isinstance(request, Mapping) else getattr(request, "trace_id", None)
    return tid if isinstance(tid, str) else None


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


def _with_trace_id(request: Any, traceparent: str) -> Any:
    """The request carrying ``traceparent`` as its trace id (a copy; the caller's object is kept)."""
    if isinstance(request, Mapping):
        return {**request, "trace_id": traceparent}
    if hasattr(request, "model_copy"):
        return request.model_copy(update={"trace_id": traceparent})
    out = copy.copy(request)
    out.trace_id = traceparent
    return out


def instrument(engine: Any, tracer: Any = None) -> Any:
    """Wrap ``engine.decide`` (this instance only) so each decision is one span ``charter.decide``
    with the outcome, deciding rule ids, policy revision and latency as attributes.

    The span's parent is the request's ``trace_id`` when it is a W3C ``traceparent`` (or a bare
    trace id), else the current OpenTelemetry context; a request without a trace id is given the
    span's ``traceparent``, so the trace record keeps the trace id of the span. Raises ImportError
    when the `otel` extra is not installed.
    """
    from opentelemetry import trace as ot

    tracer = tracer or ot.get_tracer("charter")
    inner: Callable[[Any], Any] = engine.decide
    if getattr(inner, "__charter_otel__", False):
        return engine

    def decide(request: Any) -> Any:
        tid = _trace_id_of(request)
        with tracer.start_as_current_span(
            "charter.decide", context=_parent(tid), kind=ot.SpanKind.INTERNAL, record_exception=True
        ) as span:
            if tid is None:
                sc = span.get_span_context()
                if sc.is_valid:
                    request = _with_trace_id(
                        request, f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"
                    )
            elif span.is_recording():
                span.set_attribute("charter.request.trace_id", tid)
            d = inner(request)
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
            return d

    decide.__charter_otel__ = True  # type: ignore[attr-defined]
    engine.decide = decide
    return engine
