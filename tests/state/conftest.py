"""Fixtures for the state-store tests: one store per backend, isolated by prefix/schema."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.state import open_store
from charter.state.base import StateStore

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ["memory", "sqlite", "redis", "postgresql"]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_available() -> bool:
    return _port_open(REDIS_HOST, REDIS_PORT)


def pg_available() -> bool:
    return _port_open("127.0.0.1", 5432)


def need_redis() -> None:
    if not redis_available():
        pytest.skip(f"Redis server not reachable at {REDIS_HOST}:{REDIS_PORT}")


def need_pg() -> None:
    if not pg_available():
        pytest.skip("PostgreSQL server not reachable at 127.0.0.1:5432")


def redis_cleanup(prefix: str) -> None:
    import redis

    r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            r.delete(*keys[i : i + 500])
    finally:
        r.close()


def pg_cleanup(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def store_url(backend: str, tmp_path: Path, tag: str) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite://{tmp_path / 'state.db'}"
    if backend == "redis":
        need_redis()
        return f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={tag}"
    need_pg()
    return f"{PG_DSN}?schema={tag}"


def cleanup(backend: str, tag: str) -> None:
    if backend == "redis":
        redis_cleanup(tag)
    elif backend == "postgresql":
        pg_cleanup(tag)


@pytest.fixture
def tag() -> str:
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path, tag: str) -> Iterator[StateStore]:
    backend = request.param
    url = store_url(backend, tmp_path, tag)
    s = open_store(url)
    try:
        yield s
    finally:
        s.close()
        cleanup(backend, tag)
