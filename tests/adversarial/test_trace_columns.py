"""Attacks on the trace's index columns (issue 15, item 7; charter.trace.record.index_problem).

Whoever can write the trace database can edit the columns readers filter on (``outcome``,
``agent``, ``kind``, ``at``, ``rules``, ``ref``, ``id``) without touching the hashed body, so that
``trace list --outcome deny`` hides a denial. Invariants attacked, on SQLite and PostgreSQL: every
such edit makes ``trace verify`` fail naming the record and the column; a read whose rows include
the edited record refuses (TraceError, exit 1 on the CLI, no traceback) instead of answering.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.state.conftest import need_pg, pg_cleanup
from tests.trace.conftest import pg_url, raw

import charter
from charter.cli.main import cli
from charter.trace import TraceLog, verify_log
from charter.trace.log import get, query
from charter.trace.sink import TraceError

POLICY = """
policy p
units USD
tool pay { arg amount: double }
permit pay { action call pay  reason "r" }
forbid big {
  action call pay
  when args.amount > 100.0
  reason "too big"
}
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A trace with 6 decisions (3 allow by a1, 3 deny by a2)."""
    if request.param == "sqlite":
        where = str(tmp_path / "trace.db")
        schema = None
    else:
        need_pg()
        schema = "adv_tr_" + uuid.uuid4().hex[:10]
        where = pg_url(schema, tmp_path / "trace.key")
    log = TraceLog(where)
    engine = charter.Engine(charter.loads(POLICY), trace=log)
    for i in range(3):
        engine.decide({"actor": {"id": "a1"}, "action": {"target": "pay", "args": {"amount": 1.0 + i}}})
        engine.decide({"actor": {"id": "a2"}, "action": {"target": "pay", "args": {"amount": 500.0 + i}}})
    log.close()
    try:
        yield where
    finally:
        if schema is not None:
            pg_cleanup(schema)


def _deny_seq(location: str) -> int:
    return int(raw(location, "SELECT min(seq) FROM {trace} WHERE outcome = 'deny'")[0][0])


EDITS: list[tuple[str, str, Any]] = [
    ("outcome", "outcome", "allow"),
    ("outcome to null", "outcome", None),
    ("agent", "agent", "a1"),
    ("agent to null", "agent", None),
    ("kind", "kind", "settle"),
    ("at", "at", 0.0),
    ("rules", "rules", ""),
    ("ref", "ref", "x"),
    ("id", "id", "d_forged"),
]


@pytest.mark.parametrize("name", [e[0] for e in EDITS])
def test_an_edited_index_column_fails_verify(location: str, name: str) -> None:
    _, column, value = next(e for e in EDITS if e[0] == name)
    assert verify_log(location).ok
    seq = _deny_seq(location)
    raw(location, f"UPDATE {{trace}} SET {column} = ? WHERE seq = ?", (value, seq))
    rep = verify_log(location)
    assert not rep.ok
    assert f"record {seq} was altered" in rep.problems[0] and repr(column) in rep.problems[0]


def test_the_edit_of_the_issue_is_caught_by_the_cli(location: str) -> None:
    """The attack of issue 15: outcome deny -> allow hides the denial from ``--outcome deny``."""
    seq = _deny_seq(location)
    raw(location, "UPDATE {trace} SET outcome = 'allow', agent = 'a1' WHERE seq = ?", (seq,))
    r = CliRunner().invoke(cli, ["trace", "verify", "--trace", location])
    assert r.exit_code == 1 and "TAMPERED" in r.output and "'outcome' column" in r.output
    r = CliRunner().invoke(cli, ["trace", "list", "--trace", location, "--outcome", "allow"])
    assert r.exit_code == 1 and "tampered" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize(
    ("column", "value", "read"),
    [
        ("outcome", "allow", lambda loc: query(loc, outcome="allow")),
        ("agent", "a1", lambda loc: query(loc, agent="a1")),
        ("agent", "a1", lambda loc: query(loc)),
        ("kind", "settle", lambda loc: query(loc, kind=None)),
        ("kind", "settle", lambda loc: query(loc, kind="settle")),
        ("rules", "pay", lambda loc: query(loc, rule="pay")),
    ],
)
def test_a_read_that_meets_an_edited_row_refuses(location: str, column: str, value: str, read: Any) -> None:
    seq = _deny_seq(location)
    raw(location, f"UPDATE {{trace}} SET {column} = ? WHERE seq = ?", (value, seq))
    with pytest.raises(TraceError, match="tampered"):
        read(location)


def test_get_by_an_edited_id_refuses(location: str) -> None:
    seq = _deny_seq(location)
    raw(location, "UPDATE {trace} SET id = 'd_forged' WHERE seq = ?", (seq,))
    with pytest.raises(TraceError):
        get(location, "d_forged")


def test_an_untouched_trace_reads_and_verifies(location: str) -> None:
    assert verify_log(location).ok
    assert len(query(location, outcome="deny")) == 3
    assert len(query(location, agent="a1")) == 3


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    column=st.sampled_from(["outcome", "agent", "kind", "rules", "ref", "id"]),
    value=st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["allow", "deny", "halt", "a1", "a2"])),
)
def test_any_column_edit_that_changes_a_value_is_detected(tmp_path: Path, column: str, value: Any) -> None:
    where = str(tmp_path / f"t-{uuid.uuid4().hex[:8]}.db")
    log = TraceLog(where)
    engine = charter.Engine(charter.loads(POLICY), trace=log)
    engine.decide({"actor": {"id": "a2"}, "action": {"target": "pay", "args": {"amount": 500.0}}})
    log.close()
    before = raw(where, f"SELECT {column} FROM {{trace}} WHERE seq = 1")[0][0]
    if column in ("kind", "id") and value is None:
        value = ""  # NOT NULL columns
    raw(where, f"UPDATE {{trace}} SET {column} = ? WHERE seq = 1", (value,))
    assert verify_log(where).ok == (before == value)
