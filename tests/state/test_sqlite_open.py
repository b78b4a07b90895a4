"""Several processes opening the same new SQLite file at once (replicas started together)."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
import time
from collections.abc import Callable
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from charter.sqlite_wal import enable_wal
from charter.state.sqlite import SQLiteStore
from charter.trace.sqlite_sink import SqliteSink

ROUNDS = 25
PROCS = 6


def _open_store(path: str, barrier: Barrier, out: mp.Queue) -> None:
    barrier.wait()
    try:
        SQLiteStore(path).close()
        out.put("")
    except Exception as exc:  # reported to the parent, which fails the test with it
        out.put(repr(exc))


def _open_sink(path: str, barrier: Barrier, out: mp.Queue) -> None:
    barrier.wait()
    try:
        SqliteSink(path)
        out.put("")
    except Exception as exc:
        out.put(repr(exc))


def _race(tmp_path: Path, target: Callable[..., None]) -> list[str]:
    ctx = mp.get_context("fork")
    errors: list[str] = []
    for i in range(ROUNDS):
        path = str(tmp_path / f"r{i}.db")
        barrier = ctx.Barrier(PROCS)
        out = ctx.Queue()
        procs = [ctx.Process(target=target, args=(path, barrier, out)) for _ in range(PROCS)]
        for p in procs:
            p.start()
        errors += [e for e in (out.get(timeout=60) for _ in procs) if e]
        for p in procs:
            p.join(timeout=60)
    return errors


def test_replicas_opening_one_new_store_file_together_all_open(tmp_path: Path) -> None:
    # before sqlite_wal: 15 of 100 rounds of 4 processes failed with "database is locked"
    assert _race(tmp_path, _open_store) == []


def test_processes_opening_one_new_trace_file_together_all_open(tmp_path: Path) -> None:
    # before sqlite_wal: 27 of 100 rounds of 6 processes failed
    assert _race(tmp_path, _open_sink) == []


def test_enable_wal_waits_for_a_process_holding_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "held.db")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t(x)")
    holder.execute("BEGIN EXCLUSIVE")
    threading.Timer(0.3, lambda: holder.execute("COMMIT")).start()
    db = sqlite3.connect(path, isolation_level=None, timeout=0.01, check_same_thread=False)
    started = time.monotonic()
    enable_wal(db, 5.0)
    assert time.monotonic() - started >= 0.25
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_enable_wal_gives_up_after_its_timeout(tmp_path: Path) -> None:
    path = str(tmp_path / "stuck.db")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t(x)")
    holder.execute("BEGIN EXCLUSIVE")
    db = sqlite3.connect(path, isolation_level=None, timeout=0.01)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(db, 0.2)
    assert 0.15 <= time.monotonic() - started < 2.0
    holder.execute("ROLLBACK")


def test_enable_wal_on_a_file_already_in_wal_changes_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "w.db")
    first = sqlite3.connect(path, isolation_level=None)
    enable_wal(first, 1.0)
    # a reader holding a snapshot does not stop a second opener: the mode is already WAL
    first.execute("BEGIN")
    first.execute("SELECT count(*) FROM sqlite_master").fetchall()
    second = sqlite3.connect(path, isolation_level=None, timeout=0.01)
    enable_wal(second, 0.1)
    assert second.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    first.execute("COMMIT")
