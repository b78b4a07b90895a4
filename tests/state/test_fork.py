"""A store opened before fork() keeps working in parent and child (no shared connection)."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from charter.state import Batch, HitOp, open_store
from charter.state.base import StateStore

from .conftest import cleanup, store_url

pytestmark = pytest.mark.timeout(60)

T0 = 1_800_000_000.0
OP = HitOp("rl:fork", 60.0)


def _child(store: StateStore, n: int) -> None:
    for i in range(n):
        store.apply(Batch(now=T0 + 1 + i * 0.001, hits=(OP,)))


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgresql"])
def test_store_survives_fork(backend: str, tmp_path: Path, tag: str) -> None:
    store = open_store(store_url(backend, tmp_path, tag))
    try:
        assert store.apply(Batch(now=T0, hits=(OP,))).hits[0].total == 1
        ctx = mp.get_context("fork")
        procs = [ctx.Process(target=_child, args=(store, 50)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        assert store.apply(Batch(now=T0 + 2, hits=(OP,))).hits[0].total == 102
    finally:
        store.close()
        cleanup(backend, tag)
