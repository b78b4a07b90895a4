"""Run grants in every store: create-if-unstarted, read with the run state, consume in the decide
batch (exactly N under concurrency), narrow; the same answers from memory, SQLite, Redis and PostgreSQL."""

from __future__ import annotations

import threading
import time

from charter.state import Batch
from charter.state.base import StateStore
from charter.state.types import EventOp, GrantRecord, GrantUseOp, HitOp

RUN = "run:r-grants"
NOW = 1_000.0


def _grants(limit: int | None = 2) -> tuple[GrantRecord, ...]:
    return (
        GrantRecord("g1", 1, "send-mail", {"to": ["ruth@x.example"]}, limit, 0, "assistant", NOW),
        GrantRecord("g2", 2, "send-mail", {"to": ["bo@x.example"]}, None, 0, "assistant", NOW),
    )


def _use(*ids: str) -> Batch:
    event = EventOp(RUN, {"decision": "d", "at": NOW})
    return Batch(now=NOW, event=event, grant_use=GrantUseOp(RUN, (ids,)))


def test_begin_reads_back_with_the_run_state(store: StateStore) -> None:
    assert store.begin_grants(RUN, _grants(), frozenset({"user"}), now=NOW, ttl_s=3600)
    rs = store.run_state(RUN)
    assert [(g.id, g.kind, g.limit, g.used, g.actor) for g in rs.grants] == [
        ("g1", "send-mail", 2, 0, "assistant"),
        ("g2", "send-mail", None, 0, "assistant"),
    ]
    assert rs.grants[0].params == {"to": ["ruth@x.example"]}
    assert rs.labels == frozenset({"user"})
    assert rs.steps == 0


def test_begin_refused_once_the_run_has_grants_or_a_step(store: StateStore) -> None:
    assert store.begin_grants(RUN, _grants(), now=NOW, ttl_s=3600)
    assert not store.begin_grants(RUN, _grants(5), now=NOW, ttl_s=3600)
    assert store.run_state(RUN).grants[0].limit == 2  # the first grants stand
    other = "run:r-stepped"
    store.apply(Batch(now=NOW, event=EventOp(other, {"decision": "d0", "at": NOW})))
    assert not store.begin_grants(other, _grants(), now=NOW, ttl_s=3600)
    assert store.run_state(other).grants == ()


def test_uses_consumed_lowest_first_then_refused(store: StateStore) -> None:
    store.begin_grants(RUN, _grants(limit=1), now=NOW, ttl_s=3600)
    first = store.apply(_use("g1"))
    assert [(g.id, g.used, g.limit) for g in first.grant_uses] == [("g1", 1, 1)]
    assert first.step == 1
    refused = store.apply(_use("g1"))
    assert refused.grant_refused and refused.step is None
    assert store.run_state(RUN).steps == 1  # nothing written by the refused batch
    # the next covering instance is taken when the first is used up
    second = store.apply(_use("g1", "g2"))
    assert [(g.id, g.used) for g in second.grant_uses] == [("g2", 1)]


def test_a_blocked_batch_consumes_no_use(store: StateStore) -> None:
    store.begin_grants(RUN, _grants(limit=1), now=NOW, ttl_s=3600)
    limited = HitOp("rl:x", 60.0, 1, limit=0)
    batch = Batch(
        now=NOW, hits=(limited,), event=EventOp(RUN, {"at": NOW}), grant_use=GrantUseOp(RUN, (("g1",),))
    )
    res = store.apply(batch)
    assert res.hits[0].limited and res.grant_uses == ()
    assert store.run_state(RUN).grants[0].used == 0


def test_narrow_revokes_and_lowers_never_widens(store: StateStore) -> None:
    store.begin_grants(RUN, _grants(limit=3), now=NOW, ttl_s=3600)
    store.apply(_use("g1"))
    left = store.narrow_grants(RUN, [], {"g1": 10, "g2": 1}, now=NOW)
    assert [(g.id, g.limit, g.used) for g in left] == [("g1", 3, 1), ("g2", 1, 0)]
    left = store.narrow_grants(RUN, ["g2"], {"g1": 0}, now=NOW)
    assert [(g.id, g.limit, g.used) for g in left] == [("g1", 1, 1)]
    assert store.apply(_use("g1")).grant_refused
    assert store.apply(_use("g2")).grant_refused  # revoked


def test_exactly_n_uses_under_50_concurrent_decisions(store: StateStore) -> None:
    store.begin_grants(RUN, _grants(limit=7)[:1], now=NOW, ttl_s=3600)
    results: list[bool] = []
    lock = threading.Lock()

    def one() -> None:
        res = store.apply(_use("g1"))
        with lock:
            results.append(bool(res.grant_uses))

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 7
    assert store.run_state(RUN).grants[0].used == 7


def test_concurrent_begin_and_decide_one_wins(store: StateStore) -> None:
    """A decision's step and begin_run race: either the grants are stored before the step, or refused."""
    outcomes: list[object] = []

    def begin() -> None:
        outcomes.append(store.begin_grants(RUN, _grants(), now=NOW, ttl_s=3600))

    def decide() -> None:
        store.apply(Batch(now=NOW, event=EventOp(RUN, {"at": NOW})))

    ts = [threading.Thread(target=begin), threading.Thread(target=decide)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    rs = store.run_state(RUN)
    assert rs.steps == 1
    assert (outcomes == [True]) == bool(rs.grants)


def test_grants_go_with_a_run_past_its_deadline(store: StateStore) -> None:
    # a run lives ttl_s on the store's clock past its last write (Redis: its keys' TTL); its
    # grants go with it: run_state shows none, a use is refused, begin starts it afresh
    assert store.begin_grants(RUN, _grants(), now=NOW, ttl_s=0.3)
    assert len(store.run_state(RUN).grants) == 2
    time.sleep(0.5)
    assert store.run_state(RUN).grants == ()
    assert store.apply(_use("g1")).grant_refused
    assert store.begin_grants(RUN, _grants(), now=NOW, ttl_s=3600)
    assert not store.apply(_use("g1")).grant_refused
