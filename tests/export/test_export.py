"""Decision-log export: records reach an OTLP receiver and a JSONL endpoint, masked as the policy
declares; a target that is down or slow never slows or fails a decision, and drops are counted."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import charter
from charter.engine.engine import Engine
from charter.export import Exporter, JsonlHttpSink, Masker, OtlpLogsSink, open_sink
from charter.export.mask import HASH_PREFIX, MASKED
from charter.export.sinks import ExportError

POLICY = """
policy pay

tool pay.send {
  category write
  arg password: string
  arg account: string
  arg amount: double
  arg card: map of string
  arg items: list of map of string
}

mask args.password, args.card.number, args.items.iban
hash args.account

permit pay {
  action call pay.send
  reason "payments go through"
}
"""


def request(**args: Any) -> dict[str, Any]:
    base = {"password": "hunter2-secret", "account": "DE89370400440532013000", "amount": 12.5}
    base.update(args)
    return {"actor": {"id": "payments-agent"}, "action": {"target": "pay.send", "args": base}}


@pytest.fixture
def policy() -> charter.Policy:
    return charter.loads(POLICY)


def test_jsonl_records_are_masked_and_hashed(policy: charter.Policy, jsonl_target: Any) -> None:
    exp = Exporter(
        JsonlHttpSink(f"http://127.0.0.1:{jsonl_target.port}/logs"), policy, masker=Masker(b"k"), flush_s=0.05
    )
    engine = Engine(policy, observers=[exp])
    d = engine.decide(
        request(
            card={"number": "4111111111111111", "holder": "Ann"}, items=[{"iban": "X1234567"}, {"iban": "Y"}]
        )
    )
    assert exp.flush(10)
    (rec,) = jsonl_target.wait(1)
    assert jsonl_target.content_types == ["application/x-ndjson"]
    assert rec["decision"]["id"] == d.id and rec["decision"]["outcome"] == "allow"
    args = rec["request"]["action"]["args"]
    assert args["password"] == MASKED
    assert args["account"] == Masker(b"k").hashed("DE89370400440532013000")
    assert args["account"].startswith(HASH_PREFIX)
    assert args["amount"] == 12.5  # not declared: kept
    assert args["card"] == {"number": MASKED, "holder": "Ann"}  # edited, not dropped
    assert args["items"] == [{"iban": MASKED}, {"iban": MASKED}]
    text = str(rec)
    assert "hunter2-secret" not in text and "4111111111111111" not in text and "DE89370" not in text
    exp.close()


def test_otlp_receiver_gets_log_records(policy: charter.Policy, otlp_target: Any) -> None:
    sink = OtlpLogsSink(f"http://127.0.0.1:{otlp_target.port}/v1/logs")
    exp = Exporter(sink, policy, flush_s=0.05, batch_size=8)
    engine = Engine(policy, observers=[exp])
    ids = [engine.decide(request()).id for _ in range(20)]
    assert exp.flush(20)
    got = otlp_target.wait(20)
    assert [g["body"]["decision"]["id"] for g in got] == ids
    first = got[0]
    assert first["resource"]["service.name"] == "charter"
    assert first["scope"] == "charter.export"
    assert first["event_name"] == "charter.decision"
    assert first["attributes"]["charter.outcome"] == "allow"
    assert first["attributes"]["charter.target"] == "pay.send"
    assert first["body"]["request"]["action"]["args"]["password"] == MASKED
    assert otlp_target.content_types[0] == "application/x-protobuf"
    assert exp.stats.exported == 20 and exp.stats.dropped == 0
    assert exp.stats.batches >= 3  # batches of at most 8
    exp.close()


def test_target_down_decisions_stay_fast_and_drops_are_counted(
    policy: charter.Policy, closed_port: int
) -> None:
    sink = JsonlHttpSink(f"http://127.0.0.1:{closed_port}/logs", timeout=0.5)
    exp = Exporter(sink, policy, flush_s=0.05, retries=2, backoff_s=0.01, max_queue=1000)
    engine = Engine(policy, observers=[exp])
    plain = Engine(policy)
    worst = 0.0
    for _ in range(300):
        t = time.perf_counter()
        d = engine.decide(request())
        worst = max(worst, time.perf_counter() - t)
        assert d.outcome == plain.decide(request()).outcome
    assert worst < 0.25, f"a decision took {worst * 1000:.1f} ms with the export target down"
    assert exp.flush(30)
    assert exp.stats.exported == 0
    assert exp.stats.dropped == 300
    assert exp.stats.retries >= 2
    exp.close()


def test_full_queue_drops_without_blocking(policy: charter.Policy, jsonl_target: Any) -> None:
    jsonl_target.status = 503  # retried, slowly: the queue fills up behind it
    exp = Exporter(
        JsonlHttpSink(f"http://127.0.0.1:{jsonl_target.port}/"), policy, max_queue=5, batch_size=1,
        retries=50, backoff_s=0.2, flush_s=0.05,
    )  # fmt: skip
    engine = Engine(policy, observers=[exp])
    t = time.perf_counter()
    for _ in range(200):
        engine.decide(request())
    assert time.perf_counter() - t < 5.0
    assert exp.stats.dropped_queue_full >= 190
    jsonl_target.status = 200
    assert exp.flush(30)
    assert exp.stats.exported + exp.stats.dropped == 200
    exp.close()


def test_a_refused_batch_is_not_retried(policy: charter.Policy, jsonl_target: Any) -> None:
    jsonl_target.status = 400
    exp = Exporter(JsonlHttpSink(f"http://127.0.0.1:{jsonl_target.port}/"), policy, flush_s=0.05, retries=5)
    Engine(policy, observers=[exp]).decide(request())
    assert exp.flush(10)
    assert jsonl_target.requests == 1
    assert exp.stats.dropped_send_failed == 1 and exp.stats.retries == 0
    exp.close()


def test_recovers_when_target_comes_back(policy: charter.Policy, jsonl_target: Any) -> None:
    jsonl_target.status = 503
    exp = Exporter(
        JsonlHttpSink(f"http://127.0.0.1:{jsonl_target.port}/"),
        policy,
        flush_s=0.05,
        retries=20,
        backoff_s=0.05,
    )
    Engine(policy, observers=[exp]).decide(request())
    time.sleep(0.3)
    jsonl_target.status = 200
    assert exp.flush(20)
    assert exp.stats.exported == 1 and exp.stats.retries >= 1
    exp.close()


def test_open_sink_specs() -> None:
    assert isinstance(open_sink("jsonl:http://127.0.0.1:1/x"), JsonlHttpSink)
    for bad in ("jsonl:file:///etc/passwd", "ftp:http://x", "http://x", "otlp:", ""):
        with pytest.raises(ExportError):
            open_sink(bad)


def test_decisions_are_the_same_with_export_on(policy: charter.Policy, jsonl_target: Any) -> None:
    exp = Exporter(JsonlHttpSink(f"http://127.0.0.1:{jsonl_target.port}/"), policy, flush_s=0.05)
    on, off = Engine(policy, observers=[exp]), Engine(policy)
    for req in (request(), {"actor": {"id": "a"}, "action": {"target": "nope", "args": {}}}):
        a, b = on.decide(req).to_dict(), off.decide(req).to_dict()
        for d in (a, b):
            d.pop("id"), d.pop("elapsed_us", None)
        assert a == b
    exp.close()


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(_JSONISH)
def test_record_arguments_are_copied_as_a_json_round_trip_would(value: Any) -> None:
    """The exporter's deep copy of the arguments (a specialised json.loads(json.dumps(v))) gives the
    same whole result, and shares nothing mutable with the caller's arguments."""
    import json

    from charter.export.exporter import _plain

    args = {"v": value}
    copied = _plain(args, 0)
    assert copied == json.loads(json.dumps(args, default=str))
    assert json.dumps(copied, sort_keys=True) == json.dumps(json.loads(json.dumps(args)), sort_keys=True)
    if isinstance(value, (dict, list)):
        assert copied["v"] is not value
