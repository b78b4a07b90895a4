"""OpenTelemetry: one span per decision, W3C trace ids from requests and headers kept in the records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import charter
from charter import Outcome
from charter.telemetry import instrument, w3c_trace_id
from charter.trace import TraceLog
from charter.trace.log import get

POLICY = """
tool pay { arg amount: double }
permit p { action call pay  reason "ok" }
forbid big { action call pay
  when args.amount > 100.0
  reason "too big" }
"""
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


def _req(amount: float, **kw: Any) -> dict[str, Any]:
    return {"actor": {"id": "a1"}, "action": {"target": "pay", "args": {"amount": amount}}, **kw}


@pytest.fixture
def spans() -> Any:
    sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="the otel extra is not installed")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def test_w3c_trace_id_of_a_traceparent() -> None:
    assert w3c_trace_id(PARENT) == TRACE
    assert w3c_trace_id(PARENT.upper()) == TRACE
    assert w3c_trace_id(TRACE) == TRACE
    assert w3c_trace_id("job-17") == "job-17" and w3c_trace_id(None) is None
    assert w3c_trace_id(f"00-{'0' * 32}-00f067aa0ba902b7-01") == f"00-{'0' * 32}-00f067aa0ba902b7-01"


def test_one_span_per_decision_with_its_why(spans: Any, tmp_path: Path) -> None:
    tracer, exporter = spans
    log = TraceLog(tmp_path / "t.db")
    engine = instrument(charter.Engine(charter.loads(POLICY), trace=log), tracer)
    assert instrument(engine, tracer) is engine  # idempotent: still one span per decision
    ok = engine.decide(_req(5.0, trace_id=PARENT))
    no = engine.decide(_req(500.0, trace_id=TRACE))
    fresh = engine.decide(_req(6.0))
    log.close()
    assert (ok.outcome, no.outcome, fresh.outcome) == (Outcome.ALLOW, Outcome.DENY, Outcome.ALLOW)
    got = exporter.get_finished_spans()
    assert [s.name for s in got] == ["charter.decide"] * 3
    a, b, c = got
    assert a.attributes["charter.outcome"] == "allow" and list(a.attributes["charter.rules"]) == ["p"]
    assert b.attributes["charter.outcome"] == "deny" and list(b.attributes["charter.rules"]) == ["big"]
    assert a.attributes["charter.policy.revision"] == engine.policy.revision
    assert a.attributes["charter.decision.id"] == ok.id and a.attributes["charter.latency_us"] > 0
    # a traceparent is the span's remote parent; a bare trace id makes it join that trace
    assert f"{a.context.trace_id:032x}" == TRACE and f"{a.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert f"{b.context.trace_id:032x}" == TRACE
    assert c.parent is None and f"{c.context.trace_id:032x}" != TRACE
    # the trace records keep the trace id (a request without one gets the span's)
    recs = [get(tmp_path / "t.db", d.id)[0] for d in (ok, no, fresh)]
    assert [r["trace_id"] for r in recs if r] == [TRACE, TRACE, f"{c.context.trace_id:032x}"]
    assert recs[0] and recs[0]["request"]["trace_id"] == PARENT


def test_no_opentelemetry_import_or_wrapper_when_off() -> None:
    code = (
        "import sys, charter\n"
        f"e = charter.Engine(charter.loads({POLICY!r}))\n"
        "e.decide({'actor': {'id': 'a'}, 'action': {'target': 'pay', 'args': {'amount': 1.0}},"
        f" 'trace_id': {PARENT!r}}})\n"
        "assert not getattr(e.decide, '__charter_otel__', False)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sidecar_takes_the_traceparent_header(spans: Any, tmp_path: Path, monkeypatch: Any) -> None:
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient
    from tests.server.conftest import auth, token_set, write_policy

    from charter.server.app import create_app
    from charter.server.runtime import Runtime
    from charter.state.memory import MemoryStore

    tracer, exporter = spans
    monkeypatch.setattr("opentelemetry.trace.get_tracer", lambda *a, **k: tracer)  # the global one
    policy = write_policy(tmp_path / "policy")
    rt = Runtime(
        charter.load(policy),
        MemoryStore(),
        TraceLog(tmp_path / "t.db"),
        otel=True,
        policy_path=str(policy),
        poll_s=0,
    )
    with TestClient(create_app(rt, token_set())) as http:
        body = {"actor": {"id": "a1"}, "action": {"kind": "call", "target": "search"}}
        d = http.post("/v1/decide", json=body, headers={**auth("orch"), "traceparent": PARENT}).json()
        bad = http.post("/v1/decide", json=body, headers={**auth("orch"), "traceparent": "nonsense"}).json()
        rec = http.get(f"/v1/decisions/{d['id']}", headers=auth("orch")).json()["record"]
        assert rec["trace_id"] == TRACE and rec["request"]["trace_id"] == PARENT
        other = http.get(f"/v1/decisions/{bad['id']}", headers=auth("orch")).json()["record"]
        assert other["request"].get("trace_id") != "nonsense"
    got = exporter.get_finished_spans()
    assert len(got) == 2 and f"{got[0].context.trace_id:032x}" == TRACE
    assert f"{got[0].parent.span_id:016x}" == "00f067aa0ba902b7"
    # a reloaded policy's engine is instrumented too
    (policy / "policy.charter").write_text(
        (policy / "policy.charter").read_text() + "\n# changed\n"
        'tool extra {}\npermit extra { action call extra  reason "x" }\n'
    )
    assert rt.reload("test")
    rt.engine.decide(body)
    assert len(exporter.get_finished_spans()) == 3
