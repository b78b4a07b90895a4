"""Redis record index: pruned as records expire (it used to keep every id ever written), and the
unpruned set index of earlier versions still listed, then drained."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from charter.state import open_store
from charter.state import redis_store as rs
from charter.state.redis_store import RedisStore

from .conftest import REDIS_HOST, REDIS_PORT, cleanup, need_redis


@pytest.fixture
def store(tag: str) -> Iterator[RedisStore]:
    need_redis()
    s = open_store(f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={tag}")
    assert isinstance(s, RedisStore)
    try:
        yield s
    finally:
        s.close()
        cleanup("redis", tag)


def test_index_is_pruned(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rs, "INDEX_SKEW_MS", 0)
    for i in range(20):
        store.put_record("pending", f"d{i}", {"i": i}, ttl_s=0.001)
    time.sleep(0.02)
    store.put_record("pending", "live", {"i": "live"}, ttl_s=60)
    r = store._r
    assert r.zrange(f"{store.prefix}:recz:pending", 0, -1) == ["live"]
    assert store.list_records("pending") == [{"i": "live"}]


def test_legacy_set_index_listed_then_drained(store: RedisStore) -> None:
    r = store._r
    p = store.prefix
    r.hset(f"{p}:rec:approval:old", mapping={"v": 1, "doc": '{"id": "old"}'})
    r.sadd(f"{p}:reck:approval", "old", "gone")
    store.put_record("approval", "new", {"id": "new"}, ttl_s=None)
    assert store.list_records("approval") == [{"id": "new"}, {"id": "old"}]
    assert r.smembers(f"{p}:reck:approval") == {"old"}  # the dangling id was drained
