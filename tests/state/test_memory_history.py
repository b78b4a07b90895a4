"""The memory store's run history: its own copies without JSON text, a bounded length, one snapshot."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from charter.state import Batch, EventOp, HitOp
from charter.state.memory import _HISTORY_SLACK, MemoryStore, _own
from charter.state.types import HISTORY_CAP, dumps

T0 = 1_800_000_000.0


def _event(store: MemoryStore, now: float, doc: dict[str, Any], run: str = "run:1") -> int | None:
    return store.apply(Batch(now=now, event=EventOp(run, doc, ttl_s=86400.0))).step


class _Text(str):
    pass


@pytest.mark.parametrize(
    "tree",
    [
        {"a": 1, "b": [1, 2.5, "x", None, True], "c": {"d": (1, (2, 3))}},
        {"n": -0.0, "big": 10**30, "f": 1e-300, "s": '\ud800é\n"', "e": {}, "l": []},
        {"k": {1: "int key", 2.5: "float key", None: "null key"}},  # keys JSON turns into text
        {"t": _Text("a text subclass"), "nested": [_Text("x")]},
        [({"x": (1,)},)],
        "plain",
        3.5,
    ],
)
def test_own_gives_what_the_json_round_trip_gives(tree: Any) -> None:
    want = json.loads(dumps(tree))
    got = _own(tree)
    assert json.dumps(got) == json.dumps(want)
    assert type(got) is type(want)


def test_own_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError):
        _own({"s": {1, 2}})
    assert math.isnan(_own({"x": float("nan")})["x"])


def test_events_are_the_stores_own_and_history_hands_out_copies() -> None:
    store = MemoryStore()
    args = {"to": ["a@x.example"], "meta": {"k": (1, 2)}}
    doc = {"decision": "d1", "args": args, "at": T0}
    assert _event(store, T0, doc) == 1
    args["to"].append("evil@x.example")  # the caller changes its request after deciding
    args["meta"]["k"] = "changed"
    want = {"decision": "d1", "args": {"to": ["a@x.example"], "meta": {"k": [1, 2]}}, "at": T0}
    assert store.history("run:1") == [want]
    assert store.history_detail("run:1", 10) == [want]
    got = store.history("run:1")
    got[0]["args"]["to"].clear()  # a reader of history() changes what it was given
    assert store.history("run:1") == [want]
    store.put_result("run:1", "d1", {"outcome": "success", "result": {"id": (7,)}}, now=T0, ttl_s=60)
    detail = store.history_detail("run:1", 10)
    assert detail == [{**want, "settlement": {"outcome": "success", "result": {"id": [7]}}}]
    assert store.history("run:1") == [want]  # history is the events without settlements


def test_a_long_runs_history_is_bounded() -> None:
    """A run of more than HISTORY_CAP events keeps the last HISTORY_CAP (what Redis keeps); the
    step counter keeps counting, and nothing is kept for the events dropped (their results)."""
    store = MemoryStore()
    n = HISTORY_CAP + _HISTORY_SLACK + 50
    for i in range(1, n + 1):
        assert _event(store, T0 + i, {"decision": f"d{i}", "n": i}) == i
        if i % 7 == 0:
            store.put_result("run:1", f"d{i}", {"outcome": "success"}, now=T0 + i, ttl_s=86400.0)
    run = store._runs["run:1"]
    assert len(run.events) == len(run.parsed) <= HISTORY_CAP + _HISTORY_SLACK
    assert len(run.index) == len(run.events)
    assert len(run.results) == sum(1 for e in run.events if e["n"] % 7 == 0)
    assert store.run_state("run:1").steps == n
    hist = store.history("run:1", 10**9)
    assert [e["n"] for e in hist] == list(range(n - HISTORY_CAP + 1, n + 1))
    detail = store.history_detail("run:1", 10**9)
    assert [e["n"] for e in detail] == list(range(n - HISTORY_CAP + 1, n + 1))
    assert all(("settlement" in e) == (e["n"] % 7 == 0) for e in detail)
    # a settlement for an event no longer kept changes no kept entry, and is not kept for long
    store.put_result("run:1", "d1", {"outcome": "late"}, now=T0 + n, ttl_s=86400.0)
    assert all(e.get("settlement", {}).get("outcome") != "late" for e in store.history_detail("run:1", 10**9))
    assert store.history("run:1", 3) == [{"decision": f"d{i}", "n": i} for i in range(n - 2, n + 1)]
    for i in range(2 * (HISTORY_CAP + _HISTORY_SLACK) + 10):  # settlements of calls it never had
        store.put_result("run:1", f"x{i}", {"outcome": "success"}, now=T0 + n, ttl_s=86400.0)
    assert len(run.results) <= 2 * (HISTORY_CAP + _HISTORY_SLACK)


def test_a_batch_need_not_snapshot_the_run() -> None:
    store = MemoryStore()
    op = EventOp("run:s", {"decision": "d1"}, frozenset({"pii"}), frozenset({"m"}), 60.0)
    res = store.apply(Batch(now=T0, event=op, hits=(HitOp("w", 10.0),), want_run=False))
    assert res.step == 1 and res.run is None and res.hits[0].total == 1
    st = store.run_state("run:s")
    assert st.steps == 1 and st.labels == {"pii"} and dict(st.marks) == {"m": (1, T0)}
    res = store.apply(Batch(now=T0 + 1, event=EventOp("run:s", {"decision": "d2"}, ttl_s=60.0)))
    assert res.run is not None and res.run.steps == 2


class _Clock:
    """The store's clock, moved by hand."""

    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


def test_expired_runs_read_as_empty_and_are_reclaimed() -> None:
    # a run lives ttl_s on the store's clock past its last write (a Redis key's TTL); the store
    # forgets it when a new run is made after that (a heap: no scan of every run per decision)
    clock = _Clock()
    store = MemoryStore(clock=clock)
    for i in range(100):
        store.apply(Batch(now=T0, event=EventOp(f"run:{i}", {"n": i}, ttl_s=60.0)))
    store.put_result("run:7", "d", {"outcome": "ok"}, now=T0, ttl_s=60.0)
    clock.t += 30
    store.add_labels("run:1", frozenset({"kept"}), now=T0, ttl_s=60.0)  # run:1 lives 60 s more
    assert store.run_state("run:2").steps == 1
    clock.t += 31
    assert store.run_state("run:2").steps == 0 and store.history("run:2") == []
    assert store.history_detail("run:7", 10) == []
    assert store.run_state("run:1").labels == {"kept"}
    store.apply(Batch(now=T0, event=EventOp("run:new", {"n": 0}, ttl_s=60.0)))
    assert sorted(store._runs) == ["run:1", "run:new"]
    assert len(store._run_expiry) == 2  # one entry per run
    # an expired run written again starts afresh, even though the writer's clock did not move
    assert store.apply(Batch(now=T0, event=EventOp("run:2", {"n": 1}, ttl_s=60.0))).step == 1
    clock.t += 61
    store.apply(Batch(now=T0, event=EventOp("run:last", {"n": 0}, ttl_s=60.0)))
    assert sorted(store._runs) == ["run:last"]


def test_remembered_payloads_and_records_are_forgotten_after_expiry() -> None:
    store = MemoryStore()
    for i in range(50):
        store.remember(f"k{i}", "p", now=T0, ttl_s=10.0)
    assert store.remember("k1", "q", now=T0 + 5, ttl_s=10.0) == "p"
    store.remember("late", "p", now=T0 + 11, ttl_s=10.0)
    assert sorted(store._idem) == ["late"]
    for i in range(50):
        store.put_record("approval", f"a{i}", {"i": i}, ttl_s=-1.0)  # expired at once
    store.put_record("approval", "kept", {"i": 0}, ttl_s=3600.0)
    assert list(store._records) == [("approval", "kept")]
    assert store.list_records("approval") == [{"i": 0}]


def test_a_reservation_forgets_hold_records_past_their_retention() -> None:
    from charter.state import BudgetLine, ReserveOp
    from charter.state.types import HOLD_RETAIN_S

    store = MemoryStore()
    line = BudgetLine("b:x", limit=10**9, amount=1)
    for i in range(20):
        store.apply(Batch(now=T0, reserve=ReserveOp(f"h{i}", (line,), 60.0)))
    later = T0 + 60 + HOLD_RETAIN_S + 1
    store.apply(Batch(now=later, reserve=ReserveOp("h-new", (line,), 60.0)))
    assert list(store._holds) == ["h-new"]  # (before, only a commit forgot them)
