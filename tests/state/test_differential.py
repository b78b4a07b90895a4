"""Every backend against the memory store on one random history (lagging clocks, settlements).

Running sums (Redis), folded statements (SQLite) and the memory store's own structures must all
give the same totals, limits, reservations and statuses as recomputing from scratch would.
"""

from __future__ import annotations

import random

import pytest

from charter.state import Batch, BudgetLine, HitOp, ReserveOp, StateStore, open_store

pytestmark = pytest.mark.timeout(120)

T0 = 1_800_000_000.0


def _history(seed: int, n: int, lag_s: float) -> list[tuple[str, float, int]]:
    rng = random.Random(seed)
    out = []
    now = T0
    for i in range(n):
        now += rng.random() * 0.8
        lag = lag_s * rng.random() if rng.random() < 0.15 else 0.0  # a caller whose clock lags
        out.append((rng.choice(("apply", "apply", "apply", "commit", "release", "status")), now - lag, i))
    return out


def _run(store: StateStore, seed: int, n: int, lag_s: float) -> list[object]:
    rng = random.Random(seed + 1)
    holds: list[str] = []
    out: list[object] = []
    for op, now, i in _history(seed, n, lag_s):
        agent = f"{seed}a{rng.randint(0, 2)}"
        if op == "apply":
            hits = (
                HitOp(f"rl:{agent}", window_s=10.0, limit=12),
                HitOp(f"amt:{agent}", window_s=5.0, amount=rng.randint(1, 5), trip_above=30),
            )
            line = BudgetLine(f"b:{agent}", limit=400, amount=rng.randint(1, 40))
            org = BudgetLine(f"b:{seed}org", limit=900, amount=rng.randint(1, 40), rolling_s=30.0)
            rv = ReserveOp(f"h{seed}-{i}", (line, org), ttl_s=8.0)
            res = store.apply(Batch(now=now, hits=hits, reserve=rv))
            out.append((res.hits, res.reserve))
            if res.reserve is not None and res.reserve.ok:
                holds.append(f"h{seed}-{i}")
        elif op in ("commit", "release") and holds:
            hid = holds.pop(rng.randrange(len(holds)))
            if op == "commit":
                out.append(store.commit(hid, rng.choice((None, rng.randint(0, 50))), now=now))
            else:
                out.append(store.release(hid, now=now))
        elif op == "status":
            keys = [f"b:{seed}a0", f"b:{seed}a1", f"b:{seed}a2", f"b:{seed}org"]
            out.append(store.budget_status(keys, now=now))
    return out


@pytest.mark.parametrize("lag_s", [0.0, 6.0])
def test_backend_matches_memory(store: StateStore, lag_s: float) -> None:
    if store.backend == "memory":
        pytest.skip("the memory store is the reference")
    if lag_s and store.backend in ("sqlite", "postgresql"):
        # Known difference: for a caller whose clock lags, the SQL stores still count a hold that
        # a later caller already saw expire (expired rows are pruned lazily); memory and Redis
        # have forgotten it. Windows agree; see docs/state.md.
        pytest.skip("lagging clocks: SQL stores keep expired holds until pruned")
    for seed in (1, 2):
        ref = _run(open_store("memory://"), seed * 100, 400, lag_s)
        got = _run(store, seed * 100, 400, lag_s)
        for k, (a, b) in enumerate(zip(ref, got, strict=True)):
            assert a == b, f"seed {seed} step {k}: memory {a} != {store.backend} {b}"


def _windows(store: StateStore, seed: int, n: int, lag_s: float, forget_sums: bool = False) -> list[object]:
    """Counter hits only (rates, amounts, two hits on one key in a batch), lagging clocks."""
    rng = random.Random(seed)
    now = T0
    out: list[object] = []
    for i in range(n):
        now += rng.random() * 0.8
        at = now - (lag_s * rng.random() if rng.random() < 0.2 else 0.0)
        agent = f"w{seed}a{rng.randint(0, 2)}"
        hits = [
            HitOp(f"rl:{agent}", window_s=10.0, limit=12),
            HitOp(f"amt:{agent}", window_s=5.0, amount=rng.randint(1, 5), trip_above=30),
        ]
        if rng.random() < 0.1:  # a second hit on a key in the same batch sees the first
            hits.append(HitOp(f"rl:{agent}", window_s=10.0, limit=12))
        out.append(store.apply(Batch(now=at, hits=tuple(hits))).hits)
        if forget_sums and i % 50 == 49:
            # SQLite: running sums collected (as an idle key's are); the next hit rebuilds them
            store._db.execute("DELETE FROM wsums")  # type: ignore[attr-defined]
    return out


# lags up to 3 s: less than the shortest window here (5 s), which entries outlive by one window
@pytest.mark.parametrize("lag_s", [0.0, 3.0])
def test_windows_match_memory(store: StateStore, lag_s: float) -> None:
    if store.backend == "memory":
        pytest.skip("the memory store is the reference")
    for seed in (3, 4):
        ref = _windows(open_store("memory://"), seed, 600, lag_s)
        got = _windows(store, seed, 600, lag_s)
        for k, (a, b) in enumerate(zip(ref, got, strict=True)):
            assert a == b, f"seed {seed} step {k}: memory {a} != {store.backend} {b}"


def test_sqlite_running_sums_rebuild_after_collection(tmp_path: object) -> None:
    store = open_store(f"sqlite://{tmp_path}/w.db")
    ref = _windows(open_store("memory://"), 5, 600, 3.0)
    got = _windows(store, 5, 600, 3.0, forget_sums=True)
    assert ref == got
    store.close()
