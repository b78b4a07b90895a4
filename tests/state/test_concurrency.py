"""Concurrency proof: many processes against one budget and one rate limit, real backends."""

from __future__ import annotations

import multiprocessing as mp
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from charter.state import Batch, BudgetLine, HitOp, ReserveOp, open_store

from .conftest import cleanup, store_url

PROCS = 8
N = 1000
LIMIT = 1_000_000  # 1 USD in micro-units; total demand is ~4x that
KEY = "b:agent-daily:agent=pay-1:2026-11-22"
RL_KEY = "rl:tool=search"
RL_WINDOW = 0.1
RL_LIMIT = 20

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
CTX = mp.get_context("fork")


def _guarded(fn: Any) -> Any:
    """Report a worker's exception through the queue instead of leaving the parent waiting."""

    def run(url: str, wid: int, q: Any) -> None:
        try:
            fn(url, wid, q)
        except BaseException as exc:
            q.put(("error", f"worker {wid}: {exc!r}"))
            raise

    run.__name__ = fn.__name__
    return run


def _budget_worker(url: str, wid: int, q: Any) -> None:
    store = open_store(url)
    rng = random.Random(wid)
    committed = reserved_ok = rejected = bad_commits = violations = 0
    end = time.time() + 3600
    for i in range(N):
        amt = rng.randint(1, 1000)
        hold = f"w{wid}-{i}"
        line = BudgetLine(KEY, LIMIT, amt, expires_at=end)
        res = store.apply(Batch(now=time.time(), reserve=ReserveOp(hold, (line,), 60.0))).reserve
        assert res is not None
        st = res.lines[0]
        if not res.ok:
            rejected += 1
            continue
        reserved_ok += 1
        if st.used + st.reserved + amt > LIMIT:
            violations += 1
        actual = rng.randint(0, amt)
        c = store.commit(hold, actual, now=time.time())
        if not c.ok:
            bad_commits += 1
            continue
        committed += actual
        if c.lines[0].used + c.lines[0].reserved > LIMIT:
            violations += 1
    store.close()
    q.put((committed, reserved_ok, rejected, bad_commits, violations))


def _rate_worker(url: str, wid: int, q: Any) -> None:
    store = open_store(url)
    allowed: list[float] = []
    op = HitOp(RL_KEY, RL_WINDOW, limit=RL_LIMIT)
    for _ in range(N):
        now = time.time()
        if not store.apply(Batch(now=now, hits=(op,))).hits[0].limited:
            allowed.append(now)
    store.close()
    q.put(allowed)


def _url(backend: str, tmp_path: Path, tag: str) -> str:
    url = store_url(backend, tmp_path, tag)
    if backend == "postgresql":
        # This proves atomicity, not durability: skip the per-commit WAL flush so 16,000
        # lock-serialized transactions fit the CI time budget on a loaded 2-core runner.
        url += "&options=-c%20synchronous_commit%3Doff"
    return url


def _run(url: str, target: Any, after_start: Any = None) -> tuple[list[Any], float]:
    q = CTX.Queue()
    procs = [CTX.Process(target=_guarded(target), args=(url, w, q)) for w in range(PROCS)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    if after_start is not None:
        # INVARIANT: no other thread runs while the workers are forked (a thread holding a
        # SQLite or allocator lock at fork time can deadlock the child).
        after_start()
    results = [q.get(timeout=110) for _ in procs]
    errors = [r[1] for r in results if isinstance(r, tuple) and r and r[0] == "error"]
    assert not errors, errors
    for p in procs:
        p.join(timeout=10)
        assert p.exitcode == 0
    return results, time.perf_counter() - t0


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgresql"])
def test_budget_never_overspent(backend: str, tmp_path: Path, tag: str) -> None:
    url = _url(backend, tmp_path, tag)
    store = open_store(url)  # creates the schema before the workers race
    peak = 0
    stop = threading.Event()

    def monitor() -> None:
        nonlocal peak
        mon = open_store(url)
        while not stop.is_set():
            used, reserved = mon.budget_status([KEY], now=time.time())[KEY]
            peak = max(peak, used + reserved)
            time.sleep(0.02)
        mon.close()

    th = threading.Thread(target=monitor)
    try:
        results, elapsed = _run(url, _budget_worker, th.start)
    finally:
        stop.set()
        if th.ident is not None:
            th.join()
    try:
        committed = sum(r[0] for r in results)
        reserved_ok = sum(r[1] for r in results)
        rejected = sum(r[2] for r in results)
        ledger = store.ledger_total(KEY)
        used, reserved = store.budget_status([KEY], now=time.time())[KEY]
        print(
            f"\n[{backend}] {PROCS}x{N} reservations in {elapsed:.1f}s: ok={reserved_ok} "
            f"rejected={rejected} committed={committed} ledger={ledger} limit={LIMIT} "
            f"overspend={max(0, ledger - LIMIT)} peak(used+reserved)={peak}"
        )
        assert sum(r[4] for r in results) == 0, "a worker saw used+reserved > limit"
        assert sum(r[3] for r in results) == 0, "a commit of a live hold failed"
        assert ledger == committed, "ledger differs from the sum the workers committed"
        assert ledger <= LIMIT and peak <= LIMIT
        assert (used, reserved) == (ledger, 0)
        assert rejected > 0, "the demand should exceed the limit"
    finally:
        store.close()
        cleanup(backend, tag)


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgresql"])
def test_rate_limit_never_exceeded(backend: str, tmp_path: Path, tag: str) -> None:
    url = _url(backend, tmp_path, tag)
    open_store(url).close()
    try:
        results, elapsed = _run(url, _rate_worker)
    finally:
        cleanup(backend, tag)
    allowed = sorted(t for r in results for t in r)
    worst = 0
    lo = 0
    for hi, t in enumerate(allowed):  # every window (t - w, t] ending at an allowed hit
        while allowed[lo] <= t - RL_WINDOW:
            lo += 1
        worst = max(worst, hi - lo + 1)
    print(
        f"\n[{backend}] rate limit {RL_LIMIT}/{RL_WINDOW}s: {PROCS}x{N} hits in {elapsed:.1f}s, "
        f"allowed={len(allowed)} worst window={worst}"
    )
    assert worst <= RL_LIMIT
    assert len(allowed) < PROCS * N
