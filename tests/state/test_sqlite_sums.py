"""SQLite's running sums (counters' wsums, budgets' live holds rs/rb) against recomputing from the
rows, and the migration of a file made by the version before them."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from charter.state import Batch, BudgetLine, EventOp, HitOp, ReserveOp, open_store
from charter.state.sqlite import SQLiteStore

T0 = 1_800_000_000.0


def _live(db: sqlite3.Connection, key: str, now: float) -> int:
    (n,) = db.execute(
        "SELECT coalesce(sum(amount),0) FROM hold_lines WHERE key=? AND expires_at>?", (key, now)
    ).fetchone()
    return int(n)


def test_live_holds_sum_matches_the_rows(tmp_path: Path) -> None:
    """Reservations (some from callers whose clock lags), commits, releases, expiries, prunes and
    the sweep: the reserved amount a store reports is always the sum of the live hold lines."""
    store = open_store(f"sqlite://{tmp_path}/s.db")
    assert isinstance(store, SQLiteStore)
    db = store._db
    rng = random.Random(7)
    keys = ["b:x", "b:y"]
    holds: list[str] = []
    now = latest = T0
    for i in range(1500):
        now += rng.random() * 0.5
        latest = max(latest, now)
        at = now - (rng.random() * 3.0 if rng.random() < 0.2 else 0.0)  # a lagging clock
        op = rng.random()
        if op < 0.6:
            picked = rng.sample(keys, rng.randint(1, 2))
            lines = tuple(BudgetLine(k, limit=10**9, amount=rng.randint(1, 50)) for k in picked)
            res = store.apply(Batch(now=at, reserve=ReserveOp(f"h{i}", lines, ttl_s=rng.choice((2.0, 5.0)))))
            assert res.reserve is not None and res.reserve.ok
            holds.append(f"h{i}")
        elif op < 0.8 and holds:
            store.commit(holds.pop(rng.randrange(len(holds))), rng.choice((None, 3)), now=at)
        elif holds:
            store.release(holds.pop(rng.randrange(len(holds))), now=at)
        if i % 300 == 299:
            with store._tx() as tx:
                store._gc(tx, latest)
        status = store.budget_status(keys, now=latest)
        for k in keys:
            assert status[k][1] == _live(db, k, latest), f"step {i} key {k}"
    store.close()


def test_a_file_from_the_version_before_running_sums_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(
        """
        PRAGMA journal_mode=WAL;
        CREATE TABLE budgets(key TEXT PRIMARY KEY, total INTEGER NOT NULL, rolling_s REAL,
          expires_at REAL) WITHOUT ROWID;
        CREATE TABLE hold_lines(key TEXT NOT NULL, hold_id TEXT NOT NULL, amount INTEGER NOT NULL,
          expires_at REAL NOT NULL, PRIMARY KEY(key, hold_id)) WITHOUT ROWID;
        CREATE TABLE holds(id TEXT PRIMARY KEY, state TEXT NOT NULL, expires_at REAL NOT NULL,
          lines TEXT NOT NULL, result TEXT NOT NULL) WITHOUT ROWID;
        """
    )
    exp = T0 + 100
    old.execute("INSERT INTO budgets VALUES('b:old', 40, NULL, NULL)")
    old.execute("INSERT INTO hold_lines VALUES('b:old', 'h-old', 30, ?)", (exp,))
    old.execute(
        "INSERT INTO holds VALUES('h-old', 'held', ?, ?, '[true, []]')",
        (exp, '[["b:old", 100, 30, null, null]]'),
    )
    old.close()
    store = open_store(f"sqlite:///{path}")
    cols = {r[1]: r[5] for r in store._db.execute("PRAGMA table_info(hold_lines)")}  # type: ignore[attr-defined]
    assert cols == {"key": 1, "hold_id": 3, "amount": 0, "expires_at": 2}
    assert store.budget_status(["b:old"], now=T0) == {"b:old": (40, 30)}
    line = BudgetLine("b:old", limit=100, amount=30)
    assert store.apply(Batch(now=T0, reserve=ReserveOp("h-new", (line,), ttl_s=50))).reserve.ok  # type: ignore[union-attr]
    over = store.apply(Batch(now=T0, reserve=ReserveOp("h-3", (line,), ttl_s=50))).reserve
    assert over is not None and not over.ok and over.lines[0].reserved == 60  # the old hold counts
    c = store.commit("h-old", 10, now=T0 + 1)
    assert c.ok and c.lines[0].used == 50 and c.lines[0].reserved == 30
    store.close()
    again = open_store(f"sqlite:///{path}")  # a second open finds nothing to migrate
    assert again.budget_status(["b:old"], now=T0 + 1) == {"b:old": (50, 30)}
    again.close()


def test_counter_sum_with_thousands_of_live_entries(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/c.db")
    for i in range(3000):
        hit = HitOp("rl:k", window_s=100.0, limit=2500)
        res = store.apply(Batch(now=T0 + i * 0.01, stop_keys=(("agent", "a"),), hits=(hit,)))
        assert res.hits[0].total == min(i + 1, 2500) and res.hits[0].limited == (i >= 2500)
    (s, b) = store._db.execute("SELECT s, b FROM wsums WHERE key='rl:k'").fetchone()  # type: ignore[attr-defined]
    assert s == 2500 and b == T0 + 2999 * 0.01 - 100.0
    store.close()


def test_a_file_whose_runs_have_no_deadline_is_migrated(tmp_path: Path) -> None:
    # runs gained ``dl`` (a run's deadline on the store's clock); a run written before reads as live
    path = tmp_path / "runs.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(
        """
        PRAGMA journal_mode=WAL;
        CREATE TABLE runs(key TEXT PRIMARY KEY, steps INTEGER NOT NULL, labels TEXT NOT NULL,
          marks TEXT NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE events(run_key TEXT NOT NULL, step INTEGER NOT NULL, doc TEXT NOT NULL,
          PRIMARY KEY(run_key, step)) WITHOUT ROWID;
        """
    )
    old.execute("INSERT INTO runs VALUES('run:o', 1, '[\"pii\"]', '{}', ?)", (T0 + 3600,))
    old.execute("INSERT INTO events VALUES('run:o', 1, '{\"n\": 1}')")
    old.close()
    store = open_store(f"sqlite:///{path}")
    assert store.run_state("run:o").steps == 1 and store.history("run:o") == [{"n": 1}]
    got = store.apply(Batch(now=T0 + 1, event=EventOp("run:o", {"n": 2}, ttl_s=3600)))
    assert got.step == 2 and [e["n"] for e in store.history("run:o")] == [1, 2]
    store.close()
