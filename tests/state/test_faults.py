"""Fault injection: every backend failure surfaces as StoreError of the right kind."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.state import (
    Batch,
    BudgetLine,
    EventOp,
    HitOp,
    ReserveOp,
    StoreError,
    StoreFault,
    open_store,
)

from .conftest import PG_DSN, REDIS_HOST, REDIS_PORT, need_pg, need_redis, pg_cleanup, redis_cleanup

pytestmark = pytest.mark.timeout(60)

T0 = 1_800_000_000.0


def full_batch(now: float = T0, n: int = 0) -> Batch:
    return Batch(
        now=now,
        hits=(HitOp("rl:a", 60.0, limit=100),),
        reserve=ReserveOp(f"h{n}", (BudgetLine("b:a", 1000, 10),), 60.0),
        event=EventOp("run:1", {"n": n}, frozenset({"x"}), frozenset({"m"}), 600.0),
    )


def kind_of(fn: object) -> StoreFault:
    with pytest.raises(StoreError) as info:
        fn()  # type: ignore[operator]
    return info.value.kind


# ---------------------------------------------------------------- Redis
@pytest.fixture
def redis_admin() -> Iterator[object]:
    need_redis()
    import redis

    r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, decode_responses=True)
    yield r
    r.close()


@pytest.fixture
def rstore(tag: str) -> Iterator[object]:
    need_redis()
    s = open_store(f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={tag}&timeout=0.3")
    yield s
    s.close()
    redis_cleanup(tag)


def test_redis_connection_refused() -> None:
    s = open_store("redis://127.0.0.1:1/0?prefix=x&timeout=0.5")
    assert kind_of(lambda: s.apply(full_batch())) is StoreFault.UNAVAILABLE
    assert kind_of(s.ping) is StoreFault.UNAVAILABLE
    s.close()


def test_redis_timeout(rstore, redis_admin) -> None:  # type: ignore[no-untyped-def]
    rstore.ping()
    redis_admin.execute_command("CLIENT", "PAUSE", "800", "ALL")
    try:
        t = time.perf_counter()
        assert kind_of(lambda: rstore.apply(full_batch())) is StoreFault.TIMEOUT
        assert time.perf_counter() - t < 0.75
    finally:
        redis_admin.execute_command("CLIENT", "UNPAUSE")
    # the timed-out call may or may not have run once the pause ended; it ran at most once
    res = rstore.apply(full_batch(T0 + 1, n=1))
    assert res.hits[0].total in (1, 2) and res.reserve is not None and res.reserve.ok


def test_redis_readonly(rstore, redis_admin) -> None:  # type: ignore[no-untyped-def]
    redis_admin.execute_command("REPLICAOF", "127.0.0.1", "1")
    try:
        assert kind_of(lambda: rstore.apply(full_batch())) is StoreFault.READONLY
    finally:
        redis_admin.execute_command("REPLICAOF", "NO", "ONE")
    assert rstore.apply(full_batch()).hits[0].total == 1


def test_redis_oom(rstore, redis_admin) -> None:  # type: ignore[no-untyped-def]
    old = redis_admin.config_get("maxmemory")["maxmemory"]
    policy = redis_admin.config_get("maxmemory-policy")["maxmemory-policy"]
    redis_admin.config_set("maxmemory-policy", "noeviction")
    redis_admin.config_set("maxmemory", "1")
    try:
        assert kind_of(lambda: rstore.apply(full_batch())) is StoreFault.OOM
    finally:
        redis_admin.config_set("maxmemory", old)
        redis_admin.config_set("maxmemory-policy", policy)
    res = rstore.apply(full_batch())
    assert res.hits[0].total == 1 and res.step == 1  # nothing was half-applied before


def test_redis_noscript_reloads(rstore, redis_admin) -> None:  # type: ignore[no-untyped-def]
    assert rstore.apply(full_batch()).step == 1
    redis_admin.script_flush()
    res = rstore.apply(full_batch(T0 + 1, n=1))
    assert res.step == 2 and res.hits[0].total == 2
    assert rstore.commit("h1", 5, now=T0 + 2).ok


def test_redis_wrongtype_is_atomic(rstore, redis_admin, tag) -> None:  # type: ignore[no-untyped-def]
    redis_admin.set(f"{tag}:re:run:1", "not a list", px=60_000)
    assert kind_of(lambda: rstore.apply(full_batch())) is StoreFault.WRONGTYPE
    # the type check runs before any write: neither the hit nor the hold was recorded
    assert rstore.budget_status(["b:a"], now=T0)["b:a"] == (0, 0)
    assert rstore.apply(Batch(now=T0, hits=(HitOp("rl:a", 60.0),))).hits[0].total == 1


def test_redis_every_key_has_ttl(rstore, redis_admin, tag) -> None:  # type: ignore[no-untyped-def]
    now = time.time()
    rstore.apply(
        Batch(
            now=now,
            idempotency_key="d1",
            hits=(HitOp("rl:a", 60.0), HitOp("fan:a", 60.0, member="x")),
            reserve=ReserveOp("h1", (BudgetLine("b:a", 1000, 10, rolling_s=3600),), 60.0),
            event=EventOp("run:1", {"n": 1}, frozenset({"x"}), frozenset({"m"}), 600.0),
        )
    )
    rstore.commit("h1", 7, now=now)
    rstore.remember("d1", "{}", now=now, ttl_s=60)
    rstore.add_labels("run:2", frozenset({"y"}), now=now, ttl_s=60)
    from charter.state import StopRecord

    rstore.set_stop(StopRecord("tool", "t", "r", "b", now))
    rstore.put_record("approval", "a1", {"s": 1}, ttl_s=None)
    keys = list(redis_admin.scan_iter(match=f"{tag}:*"))
    assert len(keys) >= 12
    ttls = {k: redis_admin.pttl(k) for k in keys}
    assert all(t > 0 for t in ttls.values()), ttls


# ---------------------------------------------------------------- SQLite
def test_sqlite_busy(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    s = open_store(f"sqlite://{path}?busy_timeout_ms=50")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        t = time.perf_counter()
        assert kind_of(lambda: s.apply(full_batch())) is StoreFault.BUSY
        assert time.perf_counter() - t < 2
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert s.apply(full_batch()).step == 1
    s.close()


def test_sqlite_disk_full(tmp_path: Path) -> None:
    s = open_store(f"sqlite://{tmp_path / 'full.db'}")
    db = s._db  # type: ignore[attr-defined]
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count={pages}")
    big = {"blob": "x" * 200_000}
    batch = Batch(now=T0, event=EventOp("run:big", big, frozenset(), frozenset(), 60.0))
    assert kind_of(lambda: s.apply(batch)) is StoreFault.FULL
    assert s.run_state("run:big").steps == 0  # rolled back
    s.close()


def test_sqlite_readonly(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    rw = open_store(f"sqlite://{path}")
    rw.apply(full_batch())
    ro = open_store(f"sqlite://{path}?mode=ro")
    assert ro.run_state("run:1").steps == 1  # reads work
    assert kind_of(lambda: ro.apply(full_batch(T0 + 1, 1))) is StoreFault.READONLY
    ro.close()
    rw.close()
    if os.geteuid() != 0:  # root ignores file permissions
        os.chmod(path, 0o444)
        s = open_store(f"sqlite://{path}")
        assert kind_of(lambda: s.apply(full_batch(T0 + 2, 2))) is StoreFault.READONLY


def test_sqlite_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(os.urandom(8192))
    assert kind_of(lambda: open_store(f"sqlite://{path}")) is StoreFault.CORRUPT


def test_sqlite_corrupt_after_open(tmp_path: Path) -> None:
    path = tmp_path / "c2.db"
    s = open_store(f"sqlite://{path}")
    s.apply(full_batch())
    s.close()
    data = bytearray(path.read_bytes())
    data[4096:] = os.urandom(len(data) - 4096)  # keep the header, trash every b-tree page
    path.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    with pytest.raises(StoreError) as info:
        s2 = open_store(f"sqlite://{path}")
        s2.apply(full_batch(T0 + 1, 1))
    assert info.value.kind in (StoreFault.CORRUPT, StoreFault.OTHER)
    assert info.value.kind is StoreFault.CORRUPT


# ---------------------------------------------------------------- PostgreSQL
@pytest.fixture
def pstore(tag: str) -> Iterator[object]:
    need_pg()
    s = open_store(f"{PG_DSN}?schema={tag}")
    yield s
    s.close()
    pg_cleanup(tag)


def _admin() -> object:
    import psycopg

    return psycopg.connect(PG_DSN, autocommit=True)


def test_pg_serialization_failure_retried_then_reported(pstore, tag) -> None:  # type: ignore[no-untyped-def]
    from charter.state import postgres

    with _admin() as c:  # type: ignore[attr-defined]
        c.execute(f'CREATE SEQUENCE "{tag}".attempts')
        c.execute(f'CREATE TABLE "{tag}".fail_n(n int)')
        c.execute(f'INSERT INTO "{tag}".fail_n VALUES (1)')
        c.execute(
            f"""CREATE FUNCTION "{tag}".fail() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF nextval('"{tag}".attempts') <= (SELECT n FROM "{tag}".fail_n) THEN
                RAISE EXCEPTION 'forced' USING ERRCODE = '40001';
              END IF;
              RETURN NEW;
            END $$"""
        )
        c.execute(
            f'CREATE TRIGGER f BEFORE INSERT ON "{tag}".hits FOR EACH ROW EXECUTE FUNCTION "{tag}".fail()'
        )
    res = pstore.apply(full_batch())  # the first attempt fails, the retry succeeds
    assert res.hits[0].total == 1 and res.step == 1
    with _admin() as c:  # type: ignore[attr-defined]
        c.execute(f"SELECT setval('\"{tag}\".attempts', 1, false)")
        c.execute(f'UPDATE "{tag}".fail_n SET n = 1000')
    assert kind_of(lambda: pstore.apply(full_batch(T0 + 1, 1))) is StoreFault.CONFLICT
    with _admin() as c:  # type: ignore[attr-defined]
        (n,) = c.execute(f'SELECT last_value FROM "{tag}".attempts').fetchone()
    assert n == postgres.RETRIES  # retried, then reported
    assert pstore.run_state("run:1").steps == 1  # the failed batch left nothing behind
    assert pstore.budget_status(["b:a"], now=T0 + 1)["b:a"] == (0, 10)


def test_pg_dropped_connection(pstore) -> None:  # type: ignore[no-untyped-def]
    assert pstore.apply(full_batch()).step == 1
    pid = pstore.backend_pid()
    with _admin() as c:  # type: ignore[attr-defined]
        c.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.05)
    try:
        res = pstore.apply(full_batch(T0 + 1, 1))
        got_error = False
    except StoreError as exc:
        assert exc.kind is StoreFault.UNAVAILABLE
        got_error = True
    res = pstore.apply(full_batch(T0 + 2, 2))  # reconnects transparently
    assert pstore.backend_pid() != pid
    # never a wrong result: the failed batch applied nothing, a successful one exactly once
    assert res.step == (2 if got_error else 3)
    assert res.hits[0].total == (2 if got_error else 3)


def test_pg_unreachable() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql://postgres@127.0.0.1:1/test?schema=x&connect_timeout=1")
    assert info.value.kind is StoreFault.UNAVAILABLE


def test_pg_lock_wait_times_out(tag: str) -> None:
    need_pg()
    from charter.state.postgres import _lock_id

    s = open_store(f"{PG_DSN}?schema={tag}&statement_timeout_ms=300")
    try:
        with _admin() as c:  # type: ignore[attr-defined]
            c.execute("BEGIN")
            c.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_id(tag, "b", "b:a"),))
            t = time.perf_counter()
            assert kind_of(lambda: s.apply(full_batch())) is StoreFault.TIMEOUT
            assert time.perf_counter() - t < 3
            c.execute("ROLLBACK")
        assert s.apply(full_batch()).step == 1  # nothing of the timed-out batch remained
    finally:
        s.close()
        pg_cleanup(tag)
