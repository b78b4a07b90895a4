"""Values from earlier calls (issue 18 step 4): a settled call's result labels, ``on result ...
then label L on FIELD``, and what sources() and the evidence say about them."""

from __future__ import annotations

import time
from typing import Any

import pytest

import charter
from charter.compiler.pipeline import compile_text
from charter.engine.engine import Engine
from charter.engine.provenance import CALL_RECORD, call_key
from charter.state.memory import MemoryStore
from charter.state.types import StoreError
from charter.trace.log import TraceLog

POLICY = """
tool mail.search { category read  arg query: string }
tool mail.delete { arg message_id: string }
on result picked-ids {
  action call mail.search
  then label selector on id
  reason "An id picked from a result list selects among what the user's own query found."
}
on result others-wrote-it {
  action call mail.search
  then label untrusted
}
permit reads { action call mail.search }
permit delete-picked {
  action call mail.delete
  when "selector" in labels(args.message_id)
  when sources(args.message_id).all(s, s.tool == "mail.search" && s.inputs.all(l, l == "user"))
}
forbid delete-untrusted {
  action call mail.delete
  when "untrusted" in labels(args.message_id) && !("selector" in labels(args.message_id))
}
"""


def _req(
    target: str, call: str, args: dict[str, Any], prov: dict[str, Any], run: str = "r1"
) -> dict[str, Any]:
    return {
        "actor": {"id": "a"},
        "context": {"run": run},
        "action": {"target": target, "call_id": call, "args": args, "provenance": prov},
    }


def _search(e: Engine, query_from: str = "user", run: str = "r1", call: str = "r1:s") -> Any:
    d = e.decide(
        _req("mail.search", call, {"query": "invoices"}, {"query": {"sources": [{"from": query_from}]}}, run)
    )
    assert d.outcome.value == "allow"
    return e.settle(d.id, labels=["x"])


def _delete(e: Engine, source: dict[str, Any], run: str = "r1") -> Any:
    return e.decide(
        _req("mail.delete", f"{run}:d", {"message_id": "m-11"}, {"message_id": {"sources": [source]}}, run)
    )


def test_field_labels_go_to_that_field_only() -> None:
    e = Engine(charter.loads(POLICY))
    st = _search(e)
    # the run gets every label (the field's too); the call keeps them apart
    assert st.labels == ("selector", "untrusted", "x")
    assert _delete(e, {"call": "r1:s", "field": "id"}).outcome.value == "allow"
    # another field, or the whole result: only the result's labels (untrusted): denied by the forbid
    for src in ({"call": "r1:s", "field": "subject"}, {"call": "r1:s"}):
        d = _delete(e, src)
        assert d.outcome.value == "deny" and [h.id for h in d.rules] == ["delete-untrusted"]
    # a path below the field carries the field's labels
    assert _delete(e, {"call": "r1:s", "field": "id.0"}).outcome.value == "allow"


def test_a_call_that_was_not_settled_in_the_run_is_unknown() -> None:
    e = Engine(charter.loads(POLICY))
    _search(e)
    for src, run in (({"call": "r1:nope", "field": "id"}, "r1"), ({"call": "r1:s", "field": "id"}, "r2")):
        d = _delete(e, src, run)
        assert d.outcome.value == "deny" and d.default_deny  # unknown: neither permit nor forbid


def test_sources_name_the_tool_and_the_calls_own_inputs() -> None:
    e = Engine(charter.loads(POLICY))
    _search(e, query_from="agent")  # the run has read nothing untrusted: the query was planned
    d = _delete(e, {"call": "r1:s", "field": "id"})
    # inputs == ["planned"], not all "user": the permit's second condition fails, nothing else applies
    assert d.outcome.value == "deny" and d.default_deny
    rec = e.store.get_record(CALL_RECORD, call_key("r1", "r1:s"))
    assert rec is not None
    facts = rec[1]
    assert (facts["tool"], facts["labels"], facts["fields"], facts["inputs"]) == (
        "mail.search",
        ["untrusted", "x"],
        {"id": ["selector"]},
        ["planned"],
    )


def test_a_store_fault_reading_a_call_fails_the_rules_closed() -> None:
    class Faulty(MemoryStore):
        def get_record(self, kind: str, id: str) -> Any:
            if kind == CALL_RECORD:
                raise StoreError("down")
            return super().get_record(kind, id)

    e = Engine(charter.loads(POLICY), store=Faulty())
    _search(e)
    d = _delete(e, {"call": "r1:s", "field": "id"})
    assert d.outcome.value == "deny"
    assert any("provenance: call r1:s" in (h.error or "") for h in d.rules)


def test_then_label_on_needs_a_result_check_and_keeps_clauses_apart() -> None:
    # `on error` on the next line is a clause, not a field named error
    p = charter.loads(
        POLICY.replace("then label selector on id\n", "then label selector on id\n  on error deny\n")
    )
    (chk,) = [c for c in p.result_checks if c.id == "picked-ids"]
    assert chk.fields == frozenset({"id"}) and chk.labels == frozenset({"selector"})
    (whole,) = [c for c in p.result_checks if c.id == "others-wrote-it"]
    assert whole.fields == frozenset()


def test_the_evidence_records_the_provenance_a_rule_read(tmp_path: Any) -> None:
    log = TraceLog(str(tmp_path / "t.db"))
    e = Engine(charter.loads(POLICY), trace=log)
    _search(e)
    d = _delete(e, {"call": "r1:s", "field": "id"})
    log.close()
    ev = dict(d.evidence["delete-picked"])
    assert ev["provenance of args.message_id"] == {
        "labels": ["selector", "untrusted", "x"],
        "sources": [{"call": "r1:s", "field": "id"}],
    }
    assert ev["provenance calls"] == {
        "calls": {"r1:s": {"tool": "mail.search", "labels": ["untrusted", "x"]}}
    }


@pytest.mark.parametrize("label", ["planned", "unknown"])
def test_reserved_labels_stay_reserved_on_fields(label: str) -> None:
    res = compile_text(POLICY.replace("then label selector on id", f"then label {label} on id"))
    assert any(d.code.value == "E402" for d in res.diagnostics)


def test_an_imported_call_is_labelled_by_the_checks_as_a_settled_one() -> None:
    """A resumed run's calls (Engine.import_run) leave the same facts as settled ones: the
    policy's on result checks label them (fields included), and later values name them."""
    e = Engine(charter.loads(POLICY))
    e.import_run(
        "r1",
        actor="a",
        events=[
            {
                "call_id": "r1:s",
                "kind": "call",
                "target": "mail.search",
                "args": {"query": "invoices"},
                "provenance": {"query": {"sources": [{"from": "user"}]}},
                "labels": ["x"],
                "at": time.time(),
            }
        ],
    )
    assert _delete(e, {"call": "r1:s", "field": "id"}).outcome.value == "allow"
    d = _delete(e, {"call": "r1:s", "field": "subject"})
    assert [h.id for h in d.rules] == ["delete-untrusted"]
    facts = e.store.get_record(CALL_RECORD, call_key("r1", "r1:s"))
    assert facts is not None and facts[1]["fields"] == {"id": ["selector"]}
    assert facts[1]["labels"] == ["untrusted", "x"] and facts[1]["inputs"] == ["user"]
    assert {"selector", "untrusted", "x"} <= set(e.store.run_state("run:r1").labels)


def test_a_check_that_reads_provenance_keeps_the_same_call_facts() -> None:
    """A settlement's checks build the decision's provenance table only when one reads it, and the
    call's facts (the inputs later sources report) are made from that same table: they are what a
    settlement whose checks read nothing keeps."""
    reading = POLICY.replace(
        "then label untrusted", 'when "user" in labels(args.query) || true\n  then label untrusted'
    )
    facts = []
    for text in (POLICY, reading):
        store = MemoryStore()
        e = Engine(charter.loads(text), store=store)
        d = e.decide(
            _req(
                "mail.search",
                "r1:s",
                {"query": "invoices"},
                {"query": {"sources": [{"from": "user"}], "labels": ["typed"]}},
            )
        )
        st = e.settle(d.id, labels=["x"])
        assert st.labels == ("selector", "untrusted", "x")
        got = store.get_record(CALL_RECORD, call_key("r1", "r1:s"))
        assert got is not None
        facts.append({k: v for k, v in got[1].items() if k != "at"})
    assert facts[0] == facts[1] and facts[0]["inputs"] == ["typed", "user"]
