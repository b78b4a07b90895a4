"""State a store keeps stays bounded under key churn, and reclaiming never changes an answer."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.state import Batch, BudgetLine, HitOp, ReserveOp, StateStore, open_store
from charter.state.memory import MemoryStore
from charter.state.sqlite import SQLiteStore
from charter.state.types import BUDGET_GRACE_S, HOLD_RETAIN_S

from .conftest import PG_DSN, cleanup, need_pg, store_url

pytestmark = pytest.mark.timeout(120)

T0 = 1_800_000_000.0
#: one tick: well above every store's time resolution (Redis keeps times to the microsecond)
TICK = 0.01


def _hit(store: StateStore, now: float, key: str, window: float, member: str | None = None) -> int:
    return store.apply(Batch(now=now, hits=(HitOp(key, window, member=member),))).hits[0].total


def _reserve(store: StateStore, now: float, hold: str, line: BudgetLine, ttl: float = 5.0) -> bool:
    res = store.apply(Batch(now=now, reserve=ReserveOp(hold, (line,), ttl))).reserve
    assert res is not None
    return res.ok


def _churn(store: StateStore, now: float, tag: str, n: int = 8) -> None:
    """New keys of every kind at ``now``: what makes a store reclaim (the memory store does so
    when a key is made)."""
    for i in range(n):
        _hit(store, now, f"rl:churn:{tag}:{i}", 1.0)
        _hit(store, now, f"rm:churn:{tag}:{i}", 1.0, member="m")
        _reserve(store, now, f"h:churn:{tag}:{i}", BudgetLine(f"b:churn:{tag}:{i}", 10, 20))  # refused
    if isinstance(store, SQLiteStore):  # its sweep (every 2,000 batches), now
        with store._tx() as db:
            store._gc(db, now)


# ---------------------------------------------------------------- answers at the edges
W = 10.0  # a window; its entries are kept (and pruned past) W + max(W, 1 s) = 20 s after their hit
EDGES = [W - TICK, W, W + TICK, 2 * W - TICK, 2 * W, 2 * W + TICK, 1000.0]


@pytest.mark.parametrize("member", [None, "m1"])
def test_a_window_reads_the_same_around_its_edges_with_reclaiming(
    store: StateStore, member: str | None
) -> None:
    """A hit at T0, then (after new keys made at that time, which reclaim what is due) a hit at
    each edge of its window and of its pruning: the T0 hit counts iff it is inside the window."""
    for i in range(len(EDGES)):
        assert _hit(store, T0, f"rl:edge:{i}", W, member) == 1
    for i, dt in enumerate(EDGES):
        now = T0 + dt
        _churn(store, now, str(i))
        inside = now - W < T0
        other = None if member is None else "m2"
        assert _hit(store, now, f"rl:edge:{i}", W, other) == (2 if inside else 1), dt


@pytest.mark.parametrize("dt", [-TICK, 0.0, TICK])
def test_a_calendar_budget_reads_the_same_around_its_grace_end_with_reclaiming(
    store: StateStore, dt: float
) -> None:
    end = T0 + 100
    line = BudgetLine("b:day:edge", limit=50, amount=40, expires_at=end)
    assert _reserve(store, T0, "cal1", line)
    assert store.commit("cal1", 40, now=T0 + 1).ok
    gone = end + BUDGET_GRACE_S  # the period reads as absent from here
    now = gone + dt
    _churn(store, now, "a")
    want = (40, 0) if now < gone else (0, 0)
    assert store.budget_status([line.key], now=now)[line.key] == want
    _churn(store, now + TICK / 2, "b")
    assert _reserve(store, now + TICK / 2, "cal2", line) == (now + TICK / 2 >= gone)


@pytest.mark.parametrize("dt", [-TICK, 0.0, TICK])
def test_a_rolling_budget_reads_the_same_around_its_window_with_reclaiming(
    store: StateStore, dt: float
) -> None:
    roll = 10.0
    line = BudgetLine("b:roll:edge", limit=50, amount=40, rolling_s=roll)
    assert _reserve(store, T0, "ro1", line)
    assert store.commit("ro1", 40, now=T0).ok
    for edge in (roll, 2 * roll):  # out of the window; past the pruning of its spends
        now = T0 + edge + dt
        _churn(store, now, f"{edge}:{dt}")
        want = (40, 0) if now - roll < T0 else (0, 0)
        assert store.budget_status([line.key], now=now)[line.key] == want, edge


def test_a_commit_reads_its_budget_while_its_hold_is_kept() -> None:
    """A hold record is kept HOLD_RETAIN_S past its expiry: until then its budget is kept too,
    even when the period ended (a commit and a replayed commit read it)."""
    store = MemoryStore()
    end = T0 + 10
    line = BudgetLine("b:day:held", limit=100, amount=40, expires_at=end)
    assert _reserve(store, T0, "kept", line, ttl=3 * BUDGET_GRACE_S)
    later = end + 2 * BUDGET_GRACE_S
    _churn(store, later, "x")
    got = store.commit("kept", 30, now=later)
    assert got.ok and got.lines[0].used == 30
    again = store.commit("kept", 30, now=later + 1)
    assert again.ok and again.already and again.lines[0].used == 30
    _churn(store, T0 + 3 * BUDGET_GRACE_S + HOLD_RETAIN_S + 1, "y")
    assert "b:day:held" not in store._budgets
    assert not store.commit("kept", 30, now=T0 + 3 * BUDGET_GRACE_S + HOLD_RETAIN_S + 2).found


def test_a_hold_on_a_past_period_keeps_the_key_after_a_refused_reset() -> None:
    """A reservation refused on a period past its grace starts the key afresh (nothing charged):
    the key is still kept while a hold of the old period may be committed."""
    store = MemoryStore()
    end = T0 + 10
    line = BudgetLine("b:day:reset", limit=100, amount=40, expires_at=end)
    assert _reserve(store, T0, "old", line, ttl=3 * BUDGET_GRACE_S)
    gone = end + BUDGET_GRACE_S + 1
    assert not _reserve(store, gone, "big", BudgetLine(line.key, 100, 500, expires_at=end))
    _churn(store, gone + 1, "x")
    assert store.commit("old", 30, now=gone + 2).ok
    assert store.ledger_total(line.key) == 30


# ---------------------------------------------------------------- churn
N = 20_000


def test_memory_store_entries_stay_bounded_under_key_churn() -> None:
    """20,000 distinct counter, distinct-member and budget keys (calendar periods, rolling,
    refused), 100 a second: the windows kept never exceed what two windows' worth of hits
    made; once the clock passes every window, period and hold retention, (nearly) none are left."""
    store = MemoryStore()
    peak = 0
    for i in range(N):
        now = T0 + i / 100
        _hit(store, now, f"rl:a:{i}", 1.0)
        _hit(store, now, f"rm:a:{i}", 1.0, member=f"m{i}")
        if i % 4 == 0:  # a budget per period: a new key each period
            cal = BudgetLine(f"b:day:{i}", 100, 10, expires_at=now + 1)
            assert _reserve(store, now, f"c{i}", cal)
            assert store.commit(f"c{i}", 10, now=now).ok
        elif i % 4 == 1:
            roll = BudgetLine(f"b:roll:{i}", 100, 10, rolling_s=1.0)
            assert _reserve(store, now, f"r{i}", roll)
            assert store.commit(f"r{i}", 10, now=now).ok
        elif i % 4 == 2:
            assert not _reserve(store, now, f"x{i}", BudgetLine(f"b:no:{i}", 5, 10))
        peak = max(peak, store.entry_counts()["windows"])
    # 100 keys a second of each kind, each kept its window (1 s) plus its margin (1 s)
    assert peak <= 2 * (2 * 100 + 2)
    counts = store.entry_counts()
    assert counts["budgets"] <= N // 2 + 1  # calendar and rolling ones: their holds are kept
    end = T0 + N / 100 + HOLD_RETAIN_S + BUDGET_GRACE_S + 10
    _churn(store, end, "end", n=1)
    counts = store.entry_counts()
    assert counts["windows"] <= 2
    assert counts["budgets"] <= 1
    assert counts["holds"] <= 1


def test_an_all_time_budget_is_kept() -> None:
    store = MemoryStore()
    line = BudgetLine("b:all", limit=100, amount=30)
    assert _reserve(store, T0, "a1", line) and store.commit("a1", 30, now=T0).ok
    _churn(store, T0 + 10 * HOLD_RETAIN_S, "later")
    assert store.budget_status(["b:all"], now=T0 + 10 * HOLD_RETAIN_S + 1)["b:all"] == (30, 0)
    assert store.ledger_total("b:all") == 30


def _window_rows(store: SQLiteStore, key: str) -> tuple[int, int, int]:
    db = store._db
    return tuple(  # type: ignore[return-value]
        int(db.execute(f"SELECT count(*) FROM {t} WHERE key=?", (key,)).fetchone()[0])
        for t in ("hits", "wsums", "members")
    )


def _sweep(store: SQLiteStore, now: float) -> None:
    with store._tx() as db:
        store._gc(db, now)


def test_sqlite_sweep_keeps_a_window_for_its_newest_hit_when_a_later_one_lags(tmp_path: Path) -> None:
    """A hit from a caller whose clock lags does not bring the key's sweep forward: the window
    is kept until its newest hit (not its latest written) is past the margin."""
    store = SQLiteStore(str(tmp_path / "l.db"))
    assert _hit(store, T0 + 5, "rl:lag", W) == 1
    assert _hit(store, T0, "rl:lag", W) == 2  # written after, stamped before
    _sweep(store, T0 + 2 * W + 1)  # past the lagging hit's margin, not the newest one's
    assert _window_rows(store, "rl:lag")[:2] == (2, 1)
    assert _hit(store, T0 + W + 1, "rl:lag", W) == 2  # (the T0 + 5 hit counts)
    _sweep(store, T0 + 3 * W + 1)
    assert _window_rows(store, "rl:lag") == (0, 0, 0)
    store.close()


def test_sqlite_window_rows_stay_bounded_under_key_churn(tmp_path: Path) -> None:
    """20,000 distinct counter and distinct-member keys, 100 a second: the windows kept never
    exceed what the sweep (every 2,000 batches) leaves plus what came since; once the clock
    passes every window and its margin, a sweep leaves none."""
    store = SQLiteStore(str(tmp_path / "churn.db"))
    peak = 0
    for i in range(N):
        now = T0 + i / 100
        assert _hit(store, now, f"rl:a:{i}", 1.0) == 1
        assert _hit(store, now, f"rm:a:{i}", 1.0, member=f"m{i}") == 1
        if i % 500 == 499:
            peak = max(peak, store.entry_counts()["windows"])
    # a sweep every 1,000 keys of each kind (2,000 batches) keeps the last 2 s (window and margin)
    assert peak <= 2 * (1000 + 2 * 100 + 2)
    end = T0 + N / 100 + 2.0
    _sweep(store, end)
    assert store.entry_counts()["windows"] == 0
    db = store._db
    assert [db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("hits", "wsums", "members")] == [
        0,
        0,
        0,
    ]
    assert _hit(store, end, "rl:a:7", 1.0) == 1
    store.close()


def test_a_file_whose_windows_have_no_expiry_is_migrated(tmp_path: Path) -> None:
    """A file made before windows recorded when they are out (wsums.e, members.e) opens and keeps
    counting its old rows; they are kept until their key is hit again, then swept with it."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(
        """
        PRAGMA journal_mode=WAL;
        CREATE TABLE hits(key TEXT NOT NULL, t REAL NOT NULL, n INTEGER NOT NULL,
          amount INTEGER NOT NULL, PRIMARY KEY(key, t, n)) WITHOUT ROWID;
        CREATE TABLE wsums(key TEXT PRIMARY KEY, s INTEGER NOT NULL, b REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE members(key TEXT NOT NULL, member TEXT NOT NULL, t REAL NOT NULL,
          PRIMARY KEY(key, member)) WITHOUT ROWID;
        """
    )
    for key in ("rl:old", "rl:idle"):
        old.execute("INSERT INTO hits VALUES(?, ?, 1, 1)", (key, T0))
        old.execute("INSERT INTO wsums VALUES(?, 1, ?)", (key, T0 - W))
    old.execute("INSERT INTO members VALUES('rm:old', 'm1', ?)", (T0,))
    old.close()
    store = SQLiteStore(str(path))
    for table in ("wsums", "members"):
        assert "e" in {r[1] for r in store._db.execute(f"PRAGMA table_info({table})")}
    _sweep(store, T0 + 1)  # nothing is out yet, and nothing old is dropped for lacking e
    assert _window_rows(store, "rl:old") == (1, 1, 0) and _window_rows(store, "rm:old") == (0, 0, 1)
    assert _hit(store, T0 + 1, "rl:old", W) == 2
    assert _hit(store, T0 + 1, "rm:old", W, member="m2") == 2
    _sweep(store, T0 + 1 + 2 * W)
    assert _window_rows(store, "rl:old") == (0, 0, 0)
    assert _window_rows(store, "rm:old") == (0, 0, 1)  # (m1, written before: no e)
    assert _window_rows(store, "rl:idle") == (1, 1, 0)  # not hit since: kept as before
    assert _hit(store, T0 + 1 + 2 * W, "rm:old", W, member="m3") == 1
    store.close()
    again = SQLiteStore(str(path))  # a second open finds nothing to migrate
    assert _hit(again, T0 + 2 + 2 * W, "rl:old", W) == 1
    again.close()


def _pg_rows(store: StateStore, key: str | None = None) -> tuple[int, int, int]:
    s = store._s  # type: ignore[attr-defined]
    where = "" if key is None else " WHERE key = %s"
    return tuple(  # type: ignore[return-value]
        int(store._one(f"SELECT count(*) FROM {s}.{t}{where}", () if key is None else (key,)))  # type: ignore[attr-defined]
        for t in ("hits", "wsums", "members")
    )


def _pg_sweep(store: StateStore, now: float) -> None:
    store._one(f"SELECT {store._s}.gc(%s)::text", (now,))  # type: ignore[attr-defined]


@pytest.fixture
def pg_store(tmp_path: Path, tag: str) -> Iterator[StateStore]:
    need_pg()
    s = open_store(store_url("postgresql", tmp_path, tag))
    try:
        yield s
    finally:
        s.close()
        cleanup("postgresql", tag)


@pytest.mark.parametrize("dt", [-TICK, 0.0, TICK])
@pytest.mark.parametrize("member", [None, "m1"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_sweep_drops_a_window_exactly_when_its_newest_hit_is_past_its_margin(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, member: str | None, dt: float
) -> None:
    """A window's rows (hits and running sum, or members) go at the sweep once its newest hit is
    its window and its margin (W + max(W, 1 s)) old, not a tick before; a read right there
    answers as it would have with the rows kept (the old hits are outside the window)."""
    if backend == "sqlite":
        store: StateStore = SQLiteStore(str(tmp_path / "w.db"))
        sweep, rows_of = _sweep, _window_rows
    else:
        store = request.getfixturevalue("pg_store")
        sweep, rows_of = _pg_sweep, _pg_rows
    for t in (T0 - 5, T0):  # (the newest hit decides)
        _hit(store, t, "rl:sw", W, member)
    gone = T0 + 2 * W
    now = gone + dt
    sweep(store, now)  # type: ignore[arg-type]
    rows = rows_of(store, "rl:sw")  # type: ignore[arg-type]
    if now < gone:
        assert rows == ((0, 0, 1) if member else (2, 1, 0))
    else:
        assert rows == (0, 0, 0)
    assert _hit(store, now, "rl:sw", W, None if member is None else "m2") == 1
    if backend == "sqlite":
        store.close()


def test_postgresql_window_rows_stay_bounded_under_key_churn(pg_store: StateStore) -> None:
    n = 2_000
    for i in range(n):
        now = T0 + i / 100
        assert _hit(pg_store, now, f"rl:a:{i}", 1.0) == 1
        assert _hit(pg_store, now, f"rm:a:{i}", 1.0, member=f"m{i}") == 1
    _pg_sweep(pg_store, T0 + n / 100 + 2.0)
    assert _pg_rows(pg_store) == (0, 0, 0)
    assert _hit(pg_store, T0 + n / 100 + 2.0, "rl:a:7", 1.0) == 1


def test_a_postgresql_schema_whose_windows_have_no_expiry_is_migrated(tmp_path: Path, tag: str) -> None:
    need_pg()
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{tag}"')
        conn.execute(
            f'CREATE TABLE "{tag}".wsums(key text PRIMARY KEY, s bigint NOT NULL, b float8 NOT NULL)'
        )
        conn.execute(
            f'CREATE TABLE "{tag}".members(key text NOT NULL, member text NOT NULL, t float8 NOT NULL, '
            "PRIMARY KEY(key, member))"
        )
        conn.execute(f"INSERT INTO \"{tag}\".members VALUES ('rm:old', 'm1', {T0})")
    store = open_store(store_url("postgresql", tmp_path, tag))
    try:
        assert _hit(store, T0 + 1, "rm:old", W, member="m2") == 2
        assert _hit(store, T0 + 1, "rl:new", W) == 1
        _pg_sweep(store, T0 + 1 + 2 * W)
        assert _pg_rows(store, "rm:old") == (0, 0, 1)  # (m1, written before: no e)
        assert _pg_rows(store, "rl:new") == (0, 0, 0)
    finally:
        store.close()
        cleanup("postgresql", tag)


def _budget_rows(store: StateStore) -> tuple[int, int, int]:
    """(budgets, spends, hold lines) the store keeps."""
    if isinstance(store, SQLiteStore):
        c = store.entry_counts()
        return (
            c["budgets"],
            c["spends"],
            int(store._db.execute("SELECT count(*) FROM hold_lines").fetchone()[0]),
        )
    s = store._s  # type: ignore[attr-defined]
    return tuple(  # type: ignore[return-value]
        int(store._one(f"SELECT count(*) FROM {s}.{t}"))  # type: ignore[attr-defined]
        for t in ("budgets", "spends", "hold_lines")
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_sweep_drops_the_budgets_that_read_as_absent(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    """Calendar periods past their grace and rolling budgets past twice their window (with no
    hold line left) go at the sweep with their spends; an all-time budget stays; each reads
    afterwards as it read before."""
    if backend == "sqlite":
        store: StateStore = SQLiteStore(str(tmp_path / "s.db"))
        sweep = _sweep
    else:
        store = request.getfixturevalue("pg_store")
        sweep = _pg_sweep
    n = 2_000 if backend == "sqlite" else 300
    for i in range(n):
        now = T0 + i / 100
        cal = BudgetLine(f"b:day:{i}", 100, 10, expires_at=now + 1)
        roll = BudgetLine(f"b:roll:{i}", 100, 10, rolling_s=1.0)
        for hold, line in ((f"c{i}", cal), (f"r{i}", roll)):
            assert _reserve(store, now, hold, line)
            assert store.commit(hold, 10, now=now).ok
    assert _reserve(store, T0, "all", BudgetLine("b:all", 100, 30))
    assert store.commit("all", 30, now=T0).ok
    assert _budget_rows(store)[0] > n // 2  # (SQLite's sweep every 2,000 batches dropped some)
    end = T0 + n / 100 + HOLD_RETAIN_S + BUDGET_GRACE_S + 10
    keys = ["b:all", "b:day:7", "b:roll:7"]
    before = store.budget_status(keys, now=end)
    sweep(store, end)  # type: ignore[arg-type]
    assert _budget_rows(store) == (1, 0, 0)  # b:all (an all-time budget keeps its total in its row)
    assert (
        store.budget_status(keys, now=end)
        == before
        == {
            "b:all": (30, 0),
            "b:day:7": (0, 0),
            "b:roll:7": (0, 0),
        }
    )
    if backend == "sqlite":
        store.close()


def test_a_postgresql_sweep_keeps_a_budget_whose_lock_a_batch_holds(pg_store: StateStore) -> None:
    """The sweep takes each budget's lock as a batch would, and leaves a key whose lock is held
    (a batch in flight may be charging it) for a later sweep."""
    import psycopg

    s = pg_store._s  # type: ignore[attr-defined]
    for key in ("b:day:held", "b:day:free"):
        assert _reserve(pg_store, T0, f"h:{key}", BudgetLine(key, 100, 10, expires_at=T0 + 1))
        assert pg_store.commit(f"h:{key}", 10, now=T0).ok
    end = T0 + HOLD_RETAIN_S + BUDGET_GRACE_S + 10
    from charter.state.postgres import _lock_id

    lock = _lock_id(pg_store.schema, "b", "b:day:held")  # type: ignore[attr-defined]
    with psycopg.connect(PG_DSN, autocommit=True) as other, other.transaction():
        other.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
        _pg_sweep(pg_store, end)
        assert pg_store._one(f"SELECT string_agg(key, ',') FROM {s}.budgets") == "b:day:held"  # type: ignore[attr-defined]
    _pg_sweep(pg_store, end)
    assert _budget_rows(pg_store) == (0, 0, 0)


@pytest.mark.parametrize("key", ["b:x", "", "b:ünï:𝔘", "b:'q'", "b:" + "k" * 300])
def test_postgresql_computes_the_lock_id_a_batch_takes(pg_store: StateStore, key: str) -> None:
    from charter.state.postgres import _lock_id

    s = pg_store._s  # type: ignore[attr-defined]
    got = pg_store._one(f"SELECT {s}.key_lock('b', %s)", (key,))  # type: ignore[attr-defined]
    assert got == _lock_id(pg_store.schema, "b", key)  # type: ignore[attr-defined]
