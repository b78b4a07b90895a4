"""Trace test fixtures: a trace location per sink (SQLite file, PostgreSQL schema) and raw SQL on it."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.state.conftest import PG_DSN, need_pg, pg_cleanup

SINKS = ["sqlite", "postgresql"]


def pg_url(schema: str, key: Path) -> str:
    return f"{PG_DSN}?schema={schema}&key={key}&connect_timeout=2"


@pytest.fixture(params=SINKS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a fresh trace goes: a SQLite file, or a PostgreSQL URL with a schema of its own."""
    if request.param == "sqlite":
        yield str(tmp_path / "trace.db")
        return
    need_pg()
    schema = "tr_" + uuid.uuid4().hex[:12]
    try:
        yield pg_url(schema, tmp_path / "trace.key")
    finally:
        pg_cleanup(schema)


def raw(location: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run SQL directly on a trace's storage, as an attacker with write access would; ``{trace}``
    and ``{checkpoints}`` name its tables, ``?`` are the placeholders."""
    if location.startswith("postgresql://"):
        import psycopg

        from charter.trace.pg_sink import parse_url

        dsn, schema, _, _ = parse_url(location)
        text = sql.format(trace=f'"{schema}".trace', checkpoints=f'"{schema}".trace_checkpoints')
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(text.replace("?", "%s"), args)  # type: ignore[call-overload]
            return list(cur.fetchall()) if cur.description else []
    db = sqlite3.connect(location)
    try:
        cur = db.execute(sql.format(trace="trace", checkpoints="checkpoints"), args)
        out = list(cur.fetchall())
        db.commit()
        return out
    finally:
        db.close()
