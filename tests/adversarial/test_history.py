"""Attacks on history with conditions (issue 18 step 5; docs/semantics.md "History with conditions").

Invariant attacked: a ``where`` clause over earlier calls never turns a missing, cut, evicted or
unreadable entry into "no such call" or "it matched": each is an evaluation error, so the rule
fails closed (its ``on error``, deny by default); secret result fields never reach the trace;
values of the wrong type or non-finite are dropped and named in the settlement's failures. On
every store (memory, SQLite, Redis, PostgreSQL) and over the sidecar's real HTTP.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.adversarial.engine_side import BACKENDS, Clock, engine_on, serve

import charter
from charter.cel.history import CALL_LIMIT, DETAIL_CALLS, VALUE_LIMIT
from charter.enums import Outcome
from charter.state import StoreError, StoreFault
from charter.state.memory import MemoryStore

POLICY = """
policy history
tool mail.send {
  arg to: string
  arg body: string
  result id: string
  result size: double
}
tool mail.delete { arg message_id: string }
tool travel.profile { result passport: string secret }
tool chat.post { arg text: string }
permit work { action call mail.send, mail.delete, travel.profile, chat.post  reason "ok" }
forbid delete-own-mail {
  action call mail.delete
  after call mail.send where earlier.result.id == args.message_id
  reason "A run never deletes mail it sent itself."
}
forbid leak-passport {
  action call chat.post
  after call travel.profile where args.text.contains(earlier.result.passport)
  reason "No message carries the passport number read in this run."
}
forbid resend-same-body {
  action call mail.send
  after call mail.send within 3 steps where earlier.args.body == args.body
  reason "Not the same body twice in three steps."
}
"""


@pytest.fixture(params=BACKENDS)
def eng(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[charter.Engine, Clock]]:
    yield from engine_on(request.param, tmp_path, POLICY)


def _do(e: charter.Engine, target: str, args: dict[str, Any], run: str = "r1") -> charter.Decision:
    return e.decide(
        {"actor": {"id": "bot"}, "action": {"target": target, "args": args}, "context": {"run": run}}
    )


def _send(e: charter.Engine, result: dict[str, Any] | None, body: str = "hi", run: str = "r1") -> Any:
    d = _do(e, "mail.send", {"to": "a@b.example", "body": body}, run)
    assert d.outcome is Outcome.ALLOW, d.failures
    return e.settle(d.id, result=result)


def test_a_matching_earlier_result_decides(eng: tuple[charter.Engine, Clock]) -> None:
    e, _ = eng
    _send(e, {"id": "m-1"})
    assert _do(e, "mail.delete", {"message_id": "m-2"}).outcome is Outcome.ALLOW
    d = _do(e, "mail.delete", {"message_id": "m-1"})
    assert (d.outcome, [h.id for h in d.rules]) == (Outcome.DENY, ["delete-own-mail"])
    assert _do(e, "mail.delete", {"message_id": "m-1"}, run="other").outcome is Outcome.ALLOW


def test_an_oversized_value_is_cut_and_comparing_with_it_fails_closed(
    eng: tuple[charter.Engine, Clock],
) -> None:
    e, _ = eng
    st = _send(e, {"id": "x" * (VALUE_LIMIT + 1)})
    assert st.failures == []  # kept, as its SHA-256: not a wrong type
    d = _do(e, "mail.delete", {"message_id": "m-9"})
    assert d.outcome is Outcome.DENY  # the cut value cannot be compared: closed, never "no match"
    assert any("SHA-256" in f.error and "cannot be compared" in f.error for f in d.failures)


def test_a_call_keeps_at_most_call_limit_bytes(eng: tuple[charter.Engine, Clock]) -> None:
    e, _ = eng
    body = "b" * (VALUE_LIMIT - 100)
    n = CALL_LIMIT // VALUE_LIMIT + 1
    args = {"to": "a@b.example", "body": body, **{f"pad{i}": body for i in range(n)}}
    assert _do(e, "mail.send", args).outcome is Outcome.ALLOW
    # the body came first and was kept: the repeat is found; a later padding field was cut
    d = _do(e, "mail.send", {"to": "a@b.example", "body": body})
    assert (d.outcome, [h.id for h in d.rules]) == (Outcome.DENY, ["resend-same-body"])
    assert not d.failures


def test_entries_older_than_the_detail_window_are_an_error_not_a_miss(tmp_path: Path) -> None:
    # memory and SQLite: 513 decisions on the networked stores would only repeat the same code
    for backend in ("memory", "sqlite"):
        for e, _ in engine_on(backend, tmp_path, POLICY):
            _send(e, {"id": "m-old"})
            for _ in range(DETAIL_CALLS):
                assert _do(e, "mail.delete", {"message_id": "m-new"}).outcome is Outcome.ALLOW
            d = _do(e, "mail.delete", {"message_id": "m-old"})
            assert d.outcome is Outcome.DENY, backend  # unknown whether m-old was sent: closed
            assert any("older than the detail window" in f.error for f in d.failures)
            # a windowed clause that cannot reach the evicted entries still decides
            d = _do(e, "mail.send", {"to": "a@b.example", "body": "fresh"})
            assert d.outcome is Outcome.ALLOW, d.failures


def test_history_past_the_detail_window_is_unreadable() -> None:
    text = POLICY + (
        "forbid many-deletes {\n  action call mail.delete\n"
        '  when history.filter(e, e.tool == "mail.delete").size() > 100000\n  reason "r"\n}\n'
    )
    e = charter.Engine(charter.loads(text))
    for _ in range(DETAIL_CALLS + 1):  # one more than the window holds
        assert _do(e, "mail.delete", {"message_id": "m"}).outcome is Outcome.ALLOW
    d = _do(e, "mail.delete", {"message_id": "m"})
    assert d.outcome is Outcome.DENY  # the count could miss older entries: closed, not "fewer"
    assert any("more than the 512 kept in detail" in f.error for f in d.failures)


def test_secret_result_fields_never_reach_the_trace(tmp_path: Path) -> None:
    from charter.trace import TraceLog

    log = TraceLog(str(tmp_path / "trace.db"))
    e = charter.Engine(charter.loads(POLICY), trace=log)
    passport = "P-7731-SECRET-0042"
    d = _do(e, "travel.profile", {})
    st = e.settle(d.id, result={"passport": passport})
    assert passport not in json.dumps(st.to_dict())
    # the secret is read by the where clause of every chat.post (which is traced, with evidence)
    ok = _do(e, "chat.post", {"text": "see you at the gate"})
    assert ok.outcome is Outcome.ALLOW
    log.flush()
    rows = repr(list(log.rows()))
    e.close()
    log.close()
    assert "chat.post" in rows and "travel.profile" in rows  # the trace was written
    assert passport not in rows
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert passport.encode() not in raw


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "12", True, [1.0], {"a": 1}])
def test_a_result_of_the_wrong_type_or_non_finite_is_dropped_and_named(bad: Any) -> None:
    e = charter.Engine(charter.loads(POLICY))
    st = _send(e, {"id": "m-1", "size": bad})
    assert [(f.where, f.took) for f in st.failures] == [("result size", "dropped")]
    assert repr(bad) not in st.failures[0].error or isinstance(bad, float)
    # the well-typed field is kept
    assert _do(e, "mail.delete", {"message_id": "m-1"}).outcome is Outcome.DENY


def test_a_secret_result_still_guards_conditions() -> None:
    e = charter.Engine(charter.loads(POLICY))
    e.settle(_do(e, "travel.profile", {}).id, result={"passport": "P-1"})
    leak = _do(e, "chat.post", {"text": "my passport is P-1"})
    assert (leak.outcome, [h.id for h in leak.rules]) == (Outcome.DENY, ["leak-passport"])


def test_a_result_that_is_not_an_object_is_refused() -> None:
    e = charter.Engine(charter.loads(POLICY))
    d = _do(e, "mail.send", {"to": "a", "body": "b"})
    with pytest.raises(charter.SettleError):
        e.settle(d.id, result=["m-1"])  # type: ignore[arg-type]


def test_a_missing_field_fails_closed() -> None:
    e = charter.Engine(charter.loads(POLICY))
    _send(e, None)  # settled without a result: earlier.result has no id
    d = _do(e, "mail.delete", {"message_id": "m-1"})
    assert d.outcome is Outcome.DENY and d.failures


def test_a_non_finite_argument_never_reaches_history() -> None:
    text = POLICY.replace("tool chat.post { arg text: string }", "tool chat.post { arg text: any }")
    e = charter.Engine(charter.loads(text))
    with pytest.raises(charter.RequestError):
        _do(e, "chat.post", {"text": math.nan})
    assert e.store.history_detail("run:r1", 10) == []


class _FailingHistory(MemoryStore):
    def history_detail(self, run_key: str, limit: int) -> list[dict[str, Any]]:
        raise StoreError(StoreFault.UNAVAILABLE, "test", "connection refused")


def test_a_store_fault_fails_the_rule() -> None:
    e = charter.Engine(charter.loads(POLICY), store=_FailingHistory())
    for target, args in (("mail.send", {"to": "a", "body": "b"}), ("mail.delete", {"message_id": "m-1"})):
        d = _do(e, target, args)
        assert d.outcome is Outcome.DENY
        assert any("state store failed" in f.error for f in d.failures)
    # a rule without a where clause is not affected
    assert _do(e, "travel.profile", {}).outcome is Outcome.ALLOW


def test_the_sidecar_keeps_a_settled_result(tmp_path: Path) -> None:
    for http in serve(tmp_path, POLICY):
        req = {"actor": {"id": "bot"}, "action": {"target": "mail.send", "args": {"to": "a", "body": "b"}}}
        req["context"] = {"run": "r1"}
        d = http.post("/v1/decide", req).json()
        assert d["outcome"] == "allow"
        st = http.post("/v1/settle", {"decision_id": d["id"], "result": {"id": "m-1", "size": "big"}})
        assert st.status_code == 200, st.text
        assert [f["where"] for f in st.json()["failures"]] == ["result size"]
        req["action"] = {"target": "mail.delete", "args": {"message_id": "m-1"}}
        assert http.post("/v1/decide", req).json()["outcome"] == "deny"
        bad = http.post("/v1/settle", {"decision_id": "d-x", "result": ["m-1"]})
        assert bad.status_code in (400, 422)


def test_evidence_names_the_matched_entry_not_its_values(tmp_path: Path) -> None:
    from charter.trace import TraceLog

    log = TraceLog(str(tmp_path / "trace.db"))
    e = charter.Engine(charter.loads(POLICY), trace=log)
    d = _do(e, "mail.send", {"to": "a@b.example", "body": "hi"}, run="r9")
    e.settle(d.id, result={"id": "m-77"})
    d = e.decide(
        {
            "actor": {"id": "bot"},
            "action": {"target": "mail.delete", "args": {"message_id": "m-77"}, "call_id": "c-2"},
            "context": {"run": "r9"},
        }
    )
    assert d.outcome is Outcome.DENY
    assert d.evidence["delete-own-mail"] == [
        ("earlier where earlier.result.id == args.message_id", f"{d.id[:-1]}1 (mail.send, step 1)")
    ]
    log.close()


WHERE_AND_WHEN = """
policy where-and-when
tool pay { arg amount: double  arg to: string  arg ref: string }
tool note { arg to: string }
signal alarm { from monitor }
permit work { action call pay, note  reason "ok" }
forbid again-to-the-same {
  action call pay
  when args.amount > 100.0
  before call note where earlier.args.to == args.ref
  reason "r"
}
forbid alarmed {
  action call pay
  signal alarm
  after call note where earlier.args.to == args.ref
  reason "r"
}
"""


@pytest.mark.parametrize("specialise", [True, False])
def test_a_where_error_does_not_beat_a_false_part(specialise: bool) -> None:
    """docs/semantics.md 2 and 8.2: a rule's parts combine commutatively -- a `where` that fails
    on every entry is an error of that part, and another part that is false still decides (the
    rule does not apply), as for a `when` that fails; with every other part true, the error is the
    rule's (closed). Before the fix a `where` error failed the rule whatever the other parts were
    (a spurious deny), while a failing `when` next to a false part did not."""
    e = charter.Engine(charter.loads(WHERE_AND_WHEN), specialise=specialise)
    ctx = {"run": "r1"}
    note = {"actor": {"id": "a"}, "action": {"target": "note", "args": {"to": "x"}}, "context": ctx}
    assert e.decide(note).outcome is Outcome.ALLOW

    def pay(amount: float, **extra: Any) -> charter.Decision:
        args = {"amount": amount, "to": "x"}
        return e.decide(
            {"actor": {"id": "a"}, "action": {"target": "pay", "args": args}, "context": ctx, **extra}
        )

    small = pay(5.0)  # `when` false, no signal: neither forbid applies, the where errors are moot
    assert small.outcome is Outcome.ALLOW and not small.failures, small.failures
    big = pay(500.0)  # every other part of again-to-the-same holds: its where error is its own
    assert big.outcome is Outcome.DENY and [f.where for f in big.failures] == ["rule again-to-the-same"]
    alarm = [{"source": "monitor", "kind": "alarm"}]
    both = pay(5.0, signals=alarm)  # alarmed: the signal holds, its where fails: closed
    assert both.outcome is Outcome.DENY and [f.where for f in both.failures] == ["rule alarmed"]
