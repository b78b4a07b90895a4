"""One contract suite, run against every backend with a controllable clock (no sleeps, but 0.5 s
for a run's deadline on the store's own clock, which a Redis server's cannot be faked)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from charter.state import (
    Batch,
    BudgetLine,
    EventOp,
    HitOp,
    RecordOp,
    ReserveOp,
    StateStore,
    StopRecord,
    open_store,
)
from charter.state.memory import MemoryStore
from charter.state.sqlite import SQLiteStore
from charter.state.types import (
    BUDGET_GRACE_S,
    HISTORY_CAP,
    HISTORY_PRUNE_EVERY,
    LABEL_MARK,
    RESULTS_CHECK_EVERY,
    results_bound,
)

from .conftest import BACKENDS, PG_DSN, cleanup, store_url

pytestmark = pytest.mark.timeout(60)

T0 = 1_800_000_000.0


def hit(store: StateStore, now: float, op: HitOp) -> tuple[int, bool, bool]:
    r = store.apply(Batch(now=now, hits=(op,))).hits[0]
    assert r.key == op.key
    return r.total, r.limited, r.tripped


def reserve(store: StateStore, now: float, hold: str, *lines: BudgetLine, ttl: float = 60.0):
    res = store.apply(Batch(now=now, reserve=ReserveOp(hold, tuple(lines), ttl))).reserve
    assert res is not None
    return res


# ---------------------------------------------------------------- sliding windows
def test_window_boundaries(store: StateStore) -> None:
    op = HitOp("w:a", window_s=10.0, amount=2)
    assert hit(store, T0, op) == (2, False, False)
    assert hit(store, T0 + 5, op) == (4, False, False)
    # at T0+10 the hit at T0 is out: the window is (now - 10, now]
    assert hit(store, T0 + 10, op) == (4, False, False)
    assert hit(store, T0 + 14.999, op) == (6, False, False)
    assert hit(store, T0 + 24.5, op) == (4, False, False)  # T0+14.999 and T0+24.5
    assert hit(store, T0 + 34.5, op) == (2, False, False)  # T0+24.5 exactly on the edge: out


def test_window_limit_never_exceeded(store: StateStore) -> None:
    op = HitOp("w:lim", window_s=60.0, limit=3)
    results = [hit(store, T0 + i, op) for i in range(5)]
    assert [r[1] for r in results] == [False, False, False, True, True]
    assert [r[0] for r in results] == [1, 2, 3, 3, 3]
    # limited hits recorded nothing: once the first three age out, we are back to 1
    assert hit(store, T0 + 62.5, op) == (1, False, False)
    big = HitOp("w:amt", window_s=60.0, amount=40, limit=100)
    assert hit(store, T0, big)[:2] == (40, False)
    assert hit(store, T0 + 1, big)[:2] == (80, False)
    assert hit(store, T0 + 2, big)[:2] == (80, True)
    small = HitOp("w:amt", window_s=60.0, amount=20, limit=100)
    assert hit(store, T0 + 3, small)[:2] == (100, False)


def test_out_of_order_hit_counts_later_entries(store: StateStore) -> None:
    op = HitOp("w:skew", window_s=10.0, limit=2)
    assert hit(store, T0 + 5, op)[:2] == (1, False)
    assert hit(store, T0 + 6, op)[:2] == (2, False)
    # a caller whose clock lags by 2 s: the two later entries still count against it
    assert hit(store, T0 + 4, op)[:2] == (2, True)
    m = HitOp("fan:skew", window_s=10.0, limit=1, member="a")
    assert hit(store, T0 + 5, m)[:2] == (1, False)
    assert hit(store, T0 + 4, HitOp("fan:skew", window_s=10.0, limit=1, member="b"))[1]


def test_distinct_members(store: StateStore) -> None:
    def m(name: str) -> HitOp:
        return HitOp("fan:a", window_s=100.0, limit=2, member=name)

    assert hit(store, T0, m("x")) == (1, False, False)
    assert hit(store, T0 + 1, m("y")) == (2, False, False)
    assert hit(store, T0 + 2, m("x")) == (2, False, False)  # same member: refresh only
    assert hit(store, T0 + 3, m("z")) == (2, True, False)  # a third distinct one: limited
    # y (T0+1) ages out at T0+101; x was refreshed at T0+2 so it stays
    assert hit(store, T0 + 101.5, m("z")) == (2, False, False)
    assert hit(store, T0 + 101.6, m("y")) == (2, True, False)


def test_trip_above(store: StateStore) -> None:
    op = HitOp("trip:a", window_s=60.0, trip_above=2)
    assert hit(store, T0, op) == (1, False, False)
    assert hit(store, T0 + 1, op) == (2, False, False)
    assert hit(store, T0 + 2, op) == (3, False, True)  # recorded, then tripped


# ---------------------------------------------------------------- budgets
def test_reservation_all_or_nothing(store: StateStore) -> None:
    a = BudgetLine("b:a", limit=100, amount=60)
    b = BudgetLine("b:b", limit=50, amount=60)
    res = reserve(store, T0, "h1", a, b)
    assert not res.ok and not res.replayed
    assert [(x.key, x.ok, x.used, x.reserved, x.amount) for x in res.lines] == [
        ("b:a", True, 0, 0, 60),
        ("b:b", False, 0, 0, 60),
    ]
    assert store.budget_status(["b:a", "b:b"], now=T0) == {"b:a": (0, 0), "b:b": (0, 0)}
    ok = reserve(store, T0, "h2", a, BudgetLine("b:b", limit=100, amount=60))
    assert ok.ok
    assert store.budget_status(["b:a", "b:b"], now=T0) == {"b:a": (0, 60), "b:b": (0, 60)}
    second = reserve(store, T0 + 1, "h3", a)
    assert not second.ok
    assert second.lines[0].reserved == 60 and second.lines[0].limit == 100


def test_exact_fill_then_reject(store: StateStore) -> None:
    line = BudgetLine("b:fill", limit=100, amount=25)
    assert all(reserve(store, T0, f"f{i}", line).ok for i in range(4))
    assert not reserve(store, T0, "f5", line).ok
    assert store.budget_status(["b:fill"], now=T0)["b:fill"] == (0, 100)


def test_hold_expiry_releases(store: StateStore) -> None:
    line = BudgetLine("b:exp", limit=100, amount=80)
    assert reserve(store, T0, "e1", line, ttl=10).ok
    assert not reserve(store, T0 + 9.9, "e2", line).ok
    assert store.budget_status(["b:exp"], now=T0 + 10)["b:exp"] == (0, 0)
    assert reserve(store, T0 + 10, "e3", line).ok
    late = store.commit("e1", None, now=T0 + 11)
    assert not late.ok and not late.already and late.found  # expired, but still known
    assert store.ledger_total("b:exp") == 0


def test_idempotent_reserve_and_commit(store: StateStore) -> None:
    line = BudgetLine("b:idem", limit=100, amount=30)
    first = reserve(store, T0, "i1", line)
    again = reserve(store, T0 + 1, "i1", line)
    assert first.ok and again.ok and again.replayed and not first.replayed
    assert again.lines == first.lines
    assert store.budget_status(["b:idem"], now=T0 + 1)["b:idem"] == (0, 30)
    c1 = store.commit("i1", 20, now=T0 + 2)
    assert c1.ok and not c1.already and c1.found
    assert c1.lines[0].used == 20 and c1.lines[0].reserved == 0
    c2 = store.commit("i1", 20, now=T0 + 3)
    assert c2.ok and c2.already
    c3 = store.commit("i1", 99, now=T0 + 3)
    assert c3.already
    assert store.ledger_total("b:idem") == 20
    assert store.budget_status(["b:idem"], now=T0 + 3)["b:idem"] == (20, 0)
    # replay after commit still returns the original result and charges nothing
    assert reserve(store, T0 + 4, "i1", line).replayed
    assert store.budget_status(["b:idem"], now=T0 + 4)["b:idem"] == (20, 0)


def test_commit_refund_and_charge(store: StateStore) -> None:
    a = BudgetLine("b:rc1", limit=1_000, amount=100)
    b = BudgetLine("b:rc2", limit=1_000, amount=200)
    assert reserve(store, T0, "r1", a, b).ok
    c = store.commit("r1", None, now=T0 + 1)  # reserved amounts
    assert c.ok and [x.used for x in c.lines] == [100, 200]
    assert reserve(store, T0 + 2, "r2", a).ok
    assert store.commit("r2", 40, now=T0 + 3).ok  # refund 60
    assert reserve(store, T0 + 4, "r3", a).ok
    assert store.commit("r3", 150, now=T0 + 5).ok  # charge 50 more than reserved
    assert store.ledger_total("b:rc1") == 100 + 40 + 150
    assert store.ledger_total("b:rc2") == 200
    assert store.budget_status(["b:rc1"], now=T0 + 6)["b:rc1"] == (290, 0)


def test_unknown_hold_and_release(store: StateStore) -> None:
    unknown = store.commit("nope", 1, now=T0)
    assert not unknown.ok and not unknown.already and not unknown.found
    assert not store.release("nope", now=T0)
    line = BudgetLine("b:rel", limit=100, amount=70)
    assert reserve(store, T0, "x1", line).ok
    assert store.release("x1", now=T0 + 1)
    assert not store.release("x1", now=T0 + 1)
    assert store.budget_status(["b:rel"], now=T0 + 1)["b:rel"] == (0, 0)
    released = store.commit("x1", None, now=T0 + 2)
    assert not released.ok and released.found
    assert store.ledger_total("b:rel") == 0


def test_rolling_budget(store: StateStore) -> None:
    line = BudgetLine("b:roll", limit=100, amount=60, rolling_s=100.0)
    assert reserve(store, T0, "ro1", line).ok
    assert store.commit("ro1", 60, now=T0).ok
    assert not reserve(store, T0 + 50, "ro2", line).ok  # 60 used in (T0-50, T0+50]
    assert store.budget_status(["b:roll"], now=T0 + 50)["b:roll"] == (60, 0)
    assert store.budget_status(["b:roll"], now=T0 + 100)["b:roll"] == (0, 0)
    assert reserve(store, T0 + 100, "ro3", line).ok
    assert store.commit("ro3", 10, now=T0 + 101).ok
    assert store.ledger_total("b:roll") == 70


def test_calendar_key_expiry(store: StateStore) -> None:
    end = T0 + 1000
    line = BudgetLine("b:day:2027-01-15", limit=100, amount=100, expires_at=end)
    assert reserve(store, T0, "c1", line).ok
    assert store.commit("c1", None, now=T0 + 1).ok
    assert not reserve(store, T0 + 2, "c2", line).ok
    assert store.budget_status([line.key], now=end + 10)[line.key] == (100, 0)
    gone = end + BUDGET_GRACE_S + 1
    assert store.budget_status([line.key], now=gone)[line.key] == (0, 0)
    assert reserve(store, gone, "c3", line).ok


def test_commit_after_calendar_reset_is_not_lost(store: StateStore) -> None:
    end = T0 + 10
    line = BudgetLine("b:day:x", limit=100, amount=40, expires_at=end)
    long_ttl = 3 * BUDGET_GRACE_S
    assert reserve(store, T0, "k1", line, ttl=long_ttl).ok
    gone = end + BUDGET_GRACE_S + 1
    assert reserve(store, gone, "k2", line, ttl=long_ttl).ok  # the key is reset here
    assert store.commit("k1", 30, now=gone + 1).ok
    assert store.ledger_total("b:day:x") == 30


# ---------------------------------------------------------------- runs
def test_events_labels_marks(store: StateStore) -> None:
    def ev(now: float, n: int, labels: set[str] = set(), marks: set[str] = set()):  # noqa: B006
        op = EventOp("run:1", {"n": n, "tool": "x"}, frozenset(labels), frozenset(marks), 3600)
        return store.apply(Batch(now=now, event=op))

    r1 = ev(T0, 1, {"pii"}, {"read"})
    assert r1.step == 1 and r1.run is not None and r1.run.steps == 1
    r2 = ev(T0 + 1, 2, {"secret"})
    r3 = ev(T0 + 2.5, 3, set(), {"read", "write"})
    assert (r2.step, r3.step) == (2, 3)
    assert r3.run is not None
    assert r3.run.labels == {"pii", "secret"}
    assert dict(r3.run.marks) == {"read": (3, T0 + 2.5), "write": (3, T0 + 2.5)}
    st = store.run_state("run:1")
    assert st.steps == 3 and st.labels == {"pii", "secret"} and st.marks["read"] == (3, T0 + 2.5)
    store.add_labels("run:1", frozenset({"result:tainted"}), now=T0 + 3, ttl_s=3600)
    assert "result:tainted" in store.run_state("run:1").labels
    assert [e["n"] for e in store.history("run:1")] == [1, 2, 3]
    assert [e["n"] for e in store.history("run:1", limit=2)] == [2, 3]
    empty = store.run_state("run:none")
    assert empty.steps == 0 and not empty.labels and not empty.marks
    assert store.history("run:none") == []
    # the run expired (ttl 3600 after its last write): it starts afresh
    fresh = ev(T0 + 3 + 3600, 1)
    assert fresh.step == 1 and fresh.run is not None and fresh.run.labels == frozenset()


def test_mark_labels_records_each_label_at_the_runs_step(store: StateStore) -> None:
    # docs/semantics.md 8.1: a label records the step and time of its latest arrival, whichever
    # way it came; a settlement's labels arrive at the run's current step
    store.mark_labels("run:m", frozenset({"early"}), now=T0, ttl_s=3600)
    st = store.run_state("run:m")
    assert st.steps == 0 and st.labels == {"early"} and st.marks == {LABEL_MARK + "early": (0, T0)}
    for i in range(2):
        op = EventOp("run:m", {"n": i}, frozenset({"pii"}), frozenset({LABEL_MARK + "pii"}), 3600)
        store.apply(Batch(now=T0 + 1 + i, event=op))
    store.mark_labels("run:m", frozenset({"tainted", "pii"}), now=T0 + 5.5, ttl_s=3600)
    st = store.run_state("run:m")
    assert st.steps == 2 and st.labels == {"early", "pii", "tainted"}
    assert dict(st.marks) == {
        LABEL_MARK + "early": (0, T0),
        LABEL_MARK + "pii": (2, T0 + 5.5),
        LABEL_MARK + "tainted": (2, T0 + 5.5),
    }
    # labels and marks expire with the run: a mark after expiry starts at step 0
    store.mark_labels("run:m", frozenset({"late"}), now=T0 + 6 + 3600, ttl_s=3600)
    st = store.run_state("run:m")
    assert st.steps == 0 and st.labels == {"late"}
    assert dict(st.marks) == {LABEL_MARK + "late": (0, T0 + 6 + 3600)}


def test_history_detail_joins_each_event_with_its_settlement(store: StateStore) -> None:
    # docs/semantics.md, "History with conditions": events carry the arguments kept at decision
    # time, put_result the declared result fields kept at settlement
    def ev(now: float, did: str, args: dict[str, object]) -> None:
        op = EventOp("run:h", {"decision": did, "target": "t", "args": args}, ttl_s=3600)
        store.apply(Batch(now=now, event=op))

    assert store.history_detail("run:h", 10) == []
    ev(T0, "d1", {"x": 1})
    ev(T0 + 1, "d2", {"x": "é"})
    store.put_result(
        "run:h", "d1", {"result": {"id": "m-1"}, "cut": {}, "outcome": "success"}, now=T0 + 2, ttl_s=3600
    )
    ev(T0 + 3, "d3", {"x": [1, 2]})
    store.put_result("run:h", "d3", {"result": {"n": 1.5}, "labels": ["pii"]}, now=T0 + 4, ttl_s=3600)
    got = store.history_detail("run:h", 10)
    assert [e["decision"] for e in got] == ["d1", "d2", "d3"]
    assert got[0]["settlement"] == {"result": {"id": "m-1"}, "cut": {}, "outcome": "success"}
    assert "settlement" not in got[1] and got[1]["args"] == {"x": "é"}
    assert got[2]["settlement"]["result"] == {"n": 1.5}
    assert [e["decision"] for e in store.history_detail("run:h", 2)] == ["d2", "d3"]
    assert store.history_detail("run:h", 0) == []
    assert store.run_state("run:h").steps == 3  # a settlement is not a step
    # a run that expired starts afresh: its old events and results are gone
    ev(T0 + 4 + 3600, "d4", {})
    assert [e["decision"] for e in store.history_detail("run:h", 10)] == ["d4"]


# ---------------------------------------------------------------- stops
def test_stops(store: StateStore) -> None:
    rec = StopRecord("agent", "pay-1", "runaway", "alice", T0)
    store.set_stop(rec)
    store.set_stop(StopRecord("global", "*", "drill", "bob", T0 + 1, source="api"))
    assert {(s.scope, s.value) for s in store.list_stops()} == {("agent", "pay-1"), ("global", "*")}
    op = HitOp("w:stop", window_s=60)
    line = BudgetLine("b:stop", limit=10, amount=1)
    ev = EventOp("run:s", {"a": 1}, frozenset(), frozenset(), 60)
    res = store.apply(
        Batch(
            now=T0,
            stop_keys=(("tool", "t"), ("agent", "pay-1")),
            hits=(op,),
            reserve=ReserveOp("s1", (line,), 60),
            event=ev,
        )
    )
    assert res.stop == rec and res.hits == () and res.reserve is None and res.step is None
    assert hit(store, T0, op)[0] == 1  # nothing was recorded by the stopped batch
    assert store.budget_status(["b:stop"], now=T0)["b:stop"] == (0, 0)
    assert store.run_state("run:s").steps == 0
    assert store.clear_stop("agent", "pay-1") == rec
    assert store.clear_stop("agent", "pay-1") is None
    g = store.apply(Batch(now=T0, stop_keys=(("global", "*"),))).stop
    assert g is not None and g.source == "api" and g.by == "bob"
    store.clear_stop("global", "*")
    assert store.list_stops() == []
    with pytest.raises(ValueError):
        store.set_stop(StopRecord("planet", "x", "r", "b", T0))


# ---------------------------------------------------------------- batch ordering
def test_limited_hit_blocks_reservation_and_event(store: StateStore) -> None:
    line = BudgetLine("b:ord", limit=100, amount=10)
    ev = EventOp("run:o", {"k": 1}, frozenset({"l"}), frozenset({"m"}), 600)
    ok_hit = HitOp("w:ok", window_s=60)
    lim = HitOp("w:lim1", window_s=60, limit=1)
    first = store.apply(Batch(now=T0, hits=(lim,)))
    assert not first.hits[0].limited
    res = store.apply(Batch(now=T0 + 1, hits=(ok_hit, lim), reserve=ReserveOp("o1", (line,), 60), event=ev))
    assert [h.limited for h in res.hits] == [False, True]
    assert res.reserve is None and res.step is None
    assert res.run is not None and res.run.steps == 0 and res.run.labels == frozenset()
    assert store.budget_status(["b:ord"], now=T0 + 1)["b:ord"] == (0, 0)
    tripped = store.apply(
        Batch(
            now=T0 + 2,
            hits=(HitOp("w:tr", window_s=60, trip_above=0),),
            reserve=ReserveOp("o2", (line,), 60),
            event=ev,
        )
    )
    assert tripped.hits[0].tripped and tripped.reserve is None and tripped.step is None


def test_failed_reservation_blocks_event(store: StateStore) -> None:
    ev = EventOp("run:f", {"k": 1}, frozenset(), frozenset(), 600)
    big = BudgetLine("b:big", limit=5, amount=10)
    res = store.apply(Batch(now=T0, reserve=ReserveOp("f1", (big,), 60), event=ev))
    assert res.reserve is not None and not res.reserve.ok
    assert res.step is None and res.run is not None and res.run.steps == 0
    good = BudgetLine("b:good", limit=50, amount=10)
    ok = store.apply(Batch(now=T0, hits=(HitOp("w:f", 60),), reserve=ReserveOp("f2", (good,), 60), event=ev))
    assert ok.reserve is not None and ok.reserve.ok and ok.step == 1
    assert ok.run is not None and ok.run.steps == 1


def test_batch_record_written_iff_batch_goes_through(store: StateStore) -> None:
    line = BudgetLine("b:rec", limit=15, amount=10)
    rec = RecordOp("pending", "d-1", {"hold": "r1", "n": 1}, 3600)
    ok = store.apply(
        Batch(now=T0, hits=(HitOp("w:rec", 60),), reserve=ReserveOp("r1", (line,), 60), record=rec)
    )
    assert ok.recorded and ok.reserve is not None and ok.reserve.ok
    assert store.get_record("pending", "d-1") == (1, {"hold": "r1", "n": 1})
    # the same upsert as put_record: a live record gets the next version
    again = store.apply(Batch(now=T0, record=RecordOp("pending", "d-1", {"n": 2}, 3600)))
    assert again.recorded and store.get_record("pending", "d-1") == (2, {"n": 2})
    refused = store.apply(
        Batch(now=T0, reserve=ReserveOp("r2", (line,), 60), record=RecordOp("pending", "d-2", {}, 60))
    )
    assert refused.reserve is not None and not refused.reserve.ok and not refused.recorded
    limited = store.apply(
        Batch(now=T0, hits=(HitOp("w:rec", 60, limit=1),), record=RecordOp("pending", "d-3", {}, 60))
    )
    assert limited.hits[0].limited and not limited.recorded
    store.set_stop(StopRecord("agent", "x", "r", "op", T0))
    stopped = store.apply(
        Batch(now=T0, stop_keys=(("agent", "x"),), record=RecordOp("pending", "d-4", {}, None))
    )
    assert stopped.stop is not None and not stopped.recorded
    assert [store.get_record("pending", d) for d in ("d-2", "d-3", "d-4")] == [None, None, None]
    assert store.list_records("pending") == [{"n": 2}]


def test_first_of_many_stop_keys(store: StateStore) -> None:
    keys = tuple(("role", f"r{i}") for i in range(70))  # more than one statement's worth (SQLite)
    assert store.apply(Batch(now=T0, stop_keys=keys)).stop is None
    store.set_stop(StopRecord("role", "r65", "last", "op", T0))
    got = store.apply(Batch(now=T0, stop_keys=keys, hits=(HitOp("w:stop", 60),)))
    assert got.stop is not None and got.stop.reason == "last" and got.hits == ()
    store.set_stop(StopRecord("role", "r17", "late", "op", T0))
    store.set_stop(StopRecord("role", "r3", "early", "op", T0 + 1))
    got = store.apply(Batch(now=T0, stop_keys=keys, hits=(HitOp("w:stop", 60),)))
    assert got.stop is not None and got.stop.reason == "early" and got.hits == ()  # first key in order


# ---------------------------------------------------------------- idempotency
def test_remember_and_replay(store: StateStore) -> None:
    assert store.remember("d:1", '{"allow":true}', now=T0, ttl_s=100) is None
    assert store.remember("d:1", '{"allow":false}', now=T0 + 1, ttl_s=100) == '{"allow":true}'
    op = HitOp("w:idem", window_s=60)
    res = store.apply(Batch(now=T0 + 2, hits=(op,), idempotency_key="d:1"))
    assert res.replayed_payload == '{"allow":true}' and res.hits == ()
    assert hit(store, T0 + 3, op)[0] == 1
    fresh = store.apply(Batch(now=T0 + 4, hits=(op,), idempotency_key="d:2"))
    assert fresh.replayed_payload is None and fresh.hits[0].total == 2
    # expired after its ttl
    assert store.remember("d:1", "new", now=T0 + 101, ttl_s=100) is None
    assert store.remember("d:1", "newer", now=T0 + 102, ttl_s=100) == "new"


def test_a_stop_is_checked_before_a_replay(store: StateStore) -> None:
    """A remembered decision is never replayed past a stop that covers the batch (issue 15 item 1)."""
    assert store.remember("d:stop", '{"allow":true}', now=T0, ttl_s=100) is None
    store.set_stop(StopRecord("agent", "a1", "incident", "ops", T0))
    res = store.apply(
        Batch(now=T0 + 1, stop_keys=(("global", "*"), ("agent", "a1")), idempotency_key="d:stop")
    )
    assert res.stop is not None and res.stop.value == "a1" and res.replayed_payload is None
    res = store.apply(Batch(now=T0 + 1, stop_keys=(("agent", "a2"),), idempotency_key="d:stop"))
    assert res.stop is None and res.replayed_payload == '{"allow":true}'


# ---------------------------------------------------------------- records
def test_records_cas(store: StateStore) -> None:
    assert store.get_record("approval", "a1") is None
    store.put_record("approval", "a1", {"state": "pending", "n": 1}, ttl_s=3600)
    store.put_record("approval", "a2", {"state": "pending", "n": 2}, ttl_s=None)
    store.put_record("escalation", "e1", {"state": "open"}, ttl_s=None)
    got = store.get_record("approval", "a1")
    assert got is not None
    version, doc = got
    assert doc == {"state": "pending", "n": 1}
    assert store.cas_record("approval", "a1", version, {"state": "approved", "n": 1})
    assert not store.cas_record("approval", "a1", version, {"state": "denied", "n": 1})
    assert not store.cas_record("approval", "zz", 1, {"x": 1})
    got2 = store.get_record("approval", "a1")
    assert got2 is not None and got2[0] == version + 1 and got2[1]["state"] == "approved"
    assert sorted(d["n"] for d in store.list_records("approval")) == [1, 2]
    assert store.list_records("escalation") == [{"state": "open"}]


def test_records_read_back_as_json_gives_them(store: StateStore) -> None:
    """Every store hands a record back with JSON's types (tuples as lists, keys as strings), and a
    fresh copy each time: changing what was read (or what was written) never changes the record."""
    doc = {"args": {"to": ("a@x", "b@y")}, "nested": [("t", 1)], "keyed": {1: "one"}}
    store.put_record("call", "c1", doc, ttl_s=3600)
    doc["args"]["extra"] = True  # the caller's dict changes after the write
    want = {"args": {"to": ["a@x", "b@y"]}, "nested": [["t", 1]], "keyed": {"1": "one"}}
    got = store.get_record("call", "c1")
    assert got is not None and got[1] == want
    got[1]["args"]["to"].append("c@z")
    again = store.get_record("call", "c1")
    assert again is not None and again[1] == want
    assert store.cas_record("call", "c1", again[0], {"args": {"to": ("d@w",)}})
    last = store.get_record("call", "c1")
    assert last is not None and last[1] == {"args": {"to": ["d@w"]}}


def test_cas_exactly_one_winner(store: StateStore) -> None:
    if store.backend == "sqlite":  # a connection per thread is exercised here too
        pass
    store.put_record("approval", "race", {"winner": None}, ttl_s=600)
    got = store.get_record("approval", "race")
    assert got is not None
    version = got[0]
    wins: list[int] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        if store.cas_record("approval", "race", version, {"winner": i}):
            wins.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    final = store.get_record("approval", "race")
    assert final is not None and final[1] == {"winner": wins[0]}


def test_ping(store: StateStore) -> None:
    store.ping()


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="memory://"):
        open_store("mongodb://localhost/x")


# ---------------------------------------------------------------- bounds on a run
def _capped(backend: str, tmp_path: Path, tag: str, cap: int) -> tuple[StateStore, int]:
    """The backend's store keeping ``cap`` events per run, and the cap it keeps (Redis: its
    script's HISTORY_CAP, not an option)."""
    url = store_url(backend, tmp_path, tag)
    if backend == "memory":
        return MemoryStore(history_cap=cap), cap
    if backend == "sqlite":
        return SQLiteStore(str(tmp_path / "capped.db"), history_cap=cap), cap
    if backend == "postgresql":
        from charter.state.postgres import PostgresStore

        return PostgresStore(PG_DSN, tag, history_cap=cap), cap
    return open_store(url), HISTORY_CAP


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_keeps_its_last_cap_events_with_their_settlements(
    backend: str, tmp_path: Path, tag: str
) -> None:
    # docs/state.md: every store keeps a run's last HISTORY_CAP events (SQLite and PostgreSQL
    # delete the older ones every HISTORY_PRUNE_EVERY steps); readers see the same in all four
    store, cap = _capped(backend, tmp_path, tag, 5)
    try:
        n = cap + 2 * HISTORY_PRUNE_EVERY + 3  # two prunes and a few events past the second
        for i in range(1, n + 1):
            op = EventOp("run:cap", {"decision": f"d{i}", "n": i}, ttl_s=3600)
            assert store.apply(Batch(now=T0 + i * 1e-3, event=op)).step == i
            # settled: 1 and 300 dropped and deleted, n - cap dropped (on disk until the next
            # prune), n - cap + 1 kept
            if i in (1, 300, n - cap, n - cap + 1):
                store.put_result("run:cap", f"d{i}", {"outcome": i}, now=T0 + i * 1e-3, ttl_s=3600)
        store.put_result("run:cap", f"d{n}", {"outcome": n}, now=T0 + 1, ttl_s=3600)
        kept = list(range(n - cap + 1, n + 1))
        assert store.run_state("run:cap").steps == n  # the step counter keeps counting
        assert [e["n"] for e in store.history("run:cap", n + 10)] == kept
        assert [e["n"] for e in store.history("run:cap", 2)] == kept[-2:]
        got = store.history_detail("run:cap", n + 10)
        assert [e["n"] for e in got] == kept
        settled = {e["n"]: e["settlement"]["outcome"] for e in got if "settlement" in e}
        assert settled == {n - cap + 1: n - cap + 1, n: n}
        if backend in ("sqlite", "postgresql"):  # the disk holds at most cap + K - 1 events
            rows = _rows(store, "run:cap")
            assert rows[0] <= cap + HISTORY_PRUNE_EVERY - 1 and rows[0] >= cap
            # the settlements of deleted events went with them (n - cap + 1's, n's, n - cap's left)
            assert rows[1] == 3
    finally:
        store.close()
        cleanup(backend, tag)


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgresql"])
def test_settlements_without_a_kept_event_stay_bounded(backend: str, tmp_path: Path, tag: str) -> None:
    # docs/state.md "What each store keeps": settlements of a run whose event is not kept (past
    # the cap, or never recorded) go once the run holds more than results_bound(cap); those of
    # kept events stay, and a run still reads as it did
    store, cap = _capped(backend, tmp_path, tag, 5)
    try:
        for i in range(1, 4):
            store.apply(Batch(now=T0, event=EventOp("run:res", {"decision": f"d{i}", "n": i}, ttl_s=3600)))
            store.put_result("run:res", f"d{i}", {"outcome": i}, now=T0, ttl_s=3600)
        bound = results_bound(cap)
        for j in range(3 * bound):
            store.put_result("run:res", f"x{j}", {"outcome": j}, now=T0 + 1, ttl_s=3600)
        if isinstance(store, MemoryStore):
            held = len(store._runs["run:res"].results)
            assert held <= bound + 1
        else:
            held = _rows(store, "run:res")[1]
            # checked on one settlement in RESULTS_CHECK_EVERY: past the bound by 20 times that
            # only if 20 × 64 settlements in a row went unchecked (p ≈ 1e-9)
            assert held <= bound + 20 * RESULTS_CHECK_EVERY
        assert held >= 3
        got = store.history_detail("run:res", 10)
        assert [e["settlement"]["outcome"] for e in got] == [1, 2, 3]
        assert store.run_state("run:res").steps == 3
    finally:
        store.close()
        cleanup(backend, tag)


def _rows(store: StateStore, key: str) -> tuple[int, int]:
    """(events, results) rows of a run on disk (SQLite, PostgreSQL)."""
    if isinstance(store, SQLiteStore):
        db = store._conn()
        ev = db.execute("SELECT count(*) FROM events WHERE run_key=?", (key,)).fetchone()[0]
        res = db.execute("SELECT count(*) FROM results WHERE run_key=?", (key,)).fetchone()[0]
        return int(ev), int(res)
    conn = store._connection()  # type: ignore[attr-defined]
    s = store._s  # type: ignore[attr-defined]
    ev = conn.execute(f"SELECT count(*) FROM {s}.events WHERE run_key=%s", (key,)).fetchone()[0]
    res = conn.execute(f"SELECT count(*) FROM {s}.results WHERE run_key=%s", (key,)).fetchone()[0]
    return int(ev), int(res)


@pytest.mark.parametrize(
    "backend",
    [
        "memory",
        "sqlite",
        "redis",
        "postgresql",
    ],
)
def test_an_expired_run_reads_as_empty(backend: str, tmp_path: Path, tag: str) -> None:
    # a run lives ttl_s on the store's clock past its last write (Redis: the keys' TTL), whatever
    # clock the caller's ``now`` is on; after that every read sees nothing of it. (A short real
    # wait: a Redis server's clock cannot be faked.)
    store = open_store(store_url(backend, tmp_path, tag))
    try:
        ttl = 0.3
        store.apply(Batch(now=T0, event=EventOp("run:x", {"decision": "d1"}, frozenset({"pii"}), ttl_s=ttl)))
        store.put_result("run:x", "d1", {"outcome": "ok"}, now=T0, ttl_s=ttl)
        assert store.run_state("run:x").steps == 1
        time.sleep(ttl + 0.2)
        st = store.run_state("run:x")
        assert st.steps == 0 and not st.labels and not st.marks
        assert store.history("run:x") == [] and store.history_detail("run:x", 10) == []
    finally:
        store.close()
        cleanup(backend, tag)
