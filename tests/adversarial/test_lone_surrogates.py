"""Attacks with a surrogate code point in a request given through the Python API.

Invariant attacked: a Python ``str`` can hold a lone surrogate (``"\\ud800"``, a decode with
``surrogateescape``); no UTF-8 text can, so a request holding one could not be written to the
trace. The sidecar's JSON parser refuses one (test_http_bodies.py); in-process, the one request
validator refuses it as a RequestError naming the field (both tiers), and the trace writes any
record holding one as escaped JSON instead of failing. Before: the engine decided such a request,
the trace writer failed on its batch (losing the other records in it) and, its failure being
sticky, every later decision of the process was denied for "trace log not writable".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.adversarial.engine_side import POLICY, Clock, pay

import charter
from charter.errors import RequestError
from charter.trace.log import TraceLog
from charter.trace.verify import verify_log

LONE = ["\ud800", "ok\udfff", "\udbff\udfff", "é\ud83d", "\udc80"]  # the last: surrogateescape's


def _places(bad: str) -> list[tuple[str, dict[str, Any]]]:
    """A payment request with ``bad`` in each place free text can be, and the field it is in."""
    out: list[tuple[str, dict[str, Any]]] = []
    r = pay(10.0)
    r["action"]["args"]["to"] = bad
    out.append(("action.args.to", r))
    r = pay(10.0)
    r["action"]["args"]["memo"] = {"lines": ["fine", bad]}
    out.append(("action.args.memo.lines[1]", r))
    r = pay(10.0)
    r["action"]["args"][bad] = 1
    out.append(("action.args", r))
    r = {**pay(10.0), "actor": {"id": "payments-agent", "attributes": {"note": bad}}}
    out.append(("actor.attributes.note", r))
    r = {**pay(10.0), "context": {"ticket": bad}}
    out.append(("context.ticket", r))
    r = {**pay(10.0), "signals": [{"source": "scanner", "kind": "pii", "note": bad}]}
    out.append(("signals", r))
    r = {**pay(10.0), "signals": [{"source": "scanner", "kind": "pii", "severity": bad}]}
    out.append(("signals", r))
    return out


CASES = [(bad, field, req) for bad in LONE for field, req in _places(bad)]


@pytest.mark.parametrize(
    ("bad", "field", "request_"), CASES, ids=[f"{f}-{i}" for i, (_, f, _) in enumerate(CASES)]
)
def test_a_surrogate_in_free_text_is_refused_naming_the_field(
    bad: str, field: str, request_: dict[str, Any]
) -> None:
    engine = charter.Engine(charter.loads(POLICY), clock=Clock())
    with pytest.raises(RequestError) as exc:
        engine.decide(request_)
    assert exc.value.field is not None and exc.value.field.startswith(field), exc.value
    assert "surrogate" in str(exc.value) or "unicode string" in str(exc.value)


@pytest.mark.parametrize("good", ["😀", "é", "日本", "a\u00a0b"])
def test_non_ascii_text_that_is_unicode_is_decided(good: str) -> None:
    engine = charter.Engine(charter.loads(POLICY), clock=Clock())
    r = pay(10.0)
    r["action"]["args"]["to"] = good
    r["context"] = {"ticket": good}
    assert engine.decide(r).outcome.value == "allow"


def test_a_refused_request_leaves_the_trace_writing(tmp_path: Path) -> None:
    log = TraceLog(tmp_path / "t.db")
    engine = charter.Engine(charter.loads(POLICY), clock=Clock(), trace=log)
    for bad in LONE:
        r = pay(10.0)
        r["action"]["args"]["to"] = bad
        with pytest.raises(RequestError):
            engine.decide(r)
    assert engine.decide(pay(10.0)).outcome.value == "allow"
    log.flush()
    assert log.problem() is None
    log.close()
    assert verify_log(tmp_path / "t.db").ok


@pytest.mark.parametrize("durable", [False, True])
def test_the_trace_writes_a_record_holding_a_surrogate_and_keeps_writing(
    tmp_path: Path, durable: bool
) -> None:
    """A record from any path (an event payload, a field no validator reads) holding a surrogate
    is written escaped; the records batched with it and every later one are written too, and the
    chain verifies."""
    path = tmp_path / "t.db"
    log = TraceLog(path, durable=durable)
    log.record_event("note", {"id": "e1", "text": "before"})
    log.record_event("note", {"id": "e2", "text": "lone \ud800 here", "é": "ü"})
    log.record_event("note", {"id": "e3", "text": "after"})
    log.flush()
    assert log.problem() is None
    log.record_event("note", {"id": "e4", "text": "later"})
    log.close()
    report = verify_log(path)
    assert report.ok, report
    reader = TraceLog(path)
    events = [json.loads(row[3])["event"] for row in reader.rows()]
    reader.close()
    assert [e["id"] for e in events] == ["e1", "e2", "e3", "e4"]
    assert events[1] == {"id": "e2", "text": "lone \ud800 here", "é": "ü"}  # read back the same
