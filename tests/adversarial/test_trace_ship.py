"""Attacks on `charter trace ship` through the trace it reads (issue 20; charter.export.ship).

Whoever can write the trace database can edit, delete or insert rows, or swap the trace under a
shipper's cursor. Invariants attacked, on SQLite and PostgreSQL: a row that fails the chain or
index check is never sent (the rows before it are, the run reports it and a restart stops at it
again); a cursor that does not match the trace is refused; a masked argument never leaves, even
when the trace holds it in clear.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.trace import conftest as trace_fixtures

import charter
from charter.engine.engine import Engine
from charter.export.ship import Shipper
from charter.trace import TraceLog

location = trace_fixtures.location  # a fresh trace: a SQLite file, then a PostgreSQL schema
raw = trace_fixtures.raw

POLICY = """
policy pay

tool pay.send {
  category write
  arg password: string
  arg amount: double
}

mask args.password

permit pay {
  action call pay.send
  reason "payments go through"
}
"""
SECRET = "hunter2-secret"


class ListSink:
    """Keeps every record sent, as the target would have received it (the encoded text)."""

    name = "list"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def send(self, records: Any) -> None:
        raise AssertionError("the shipper gives the encoded lines")

    def send_encoded(self, records: Any, lines: list[str]) -> None:
        self.lines.extend(lines)

    def close(self) -> None:
        pass


def _trace(location: str, n: int) -> list[str]:
    log = TraceLog(location)
    engine = Engine(charter.loads(POLICY), trace=log)
    ids = [
        engine.decide(
            {
                "actor": {"id": "a"},
                "action": {"target": "pay.send", "args": {"password": SECRET, "amount": 1.0}},
            }
        ).id
        for _ in range(n)
    ]
    log.close()
    return ids


def _ship(location: str, cursor: Path) -> tuple[Any, ListSink]:
    sink = ListSink()
    stats = Shipper(location, sink, charter.loads(POLICY).masks, cursor=cursor, batch_size=3).run()
    return stats, sink


ATTACKS = {
    "body edited": "UPDATE {trace} SET body = replace(body, '\"allow\"', '\"deny\"') WHERE seq = 5",
    "prev edited": "UPDATE {trace} SET prev = 'x' WHERE seq = 5",
    "column edited": "UPDATE {trace} SET agent = 'someone-else' WHERE seq = 5",
    "row deleted": "DELETE FROM {trace} WHERE seq = 5",
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_tampered_row_is_never_shipped(location: str, tmp_path: Path, attack: str) -> None:
    ids = _trace(location, 8)
    raw(location, ATTACKS[attack])
    stats, sink = _ship(location, tmp_path / "cursor")
    assert stats.refused is not None and "record 5" in stats.refused
    # a broken link also holds back the record before it (its hash may be the rewritten one)
    sent = 3 if attack == "prev edited" else 4
    assert [json.loads(line)["decision"]["id"] for line in sink.lines] == ids[:sent]
    assert stats.cursor_seq == sent
    again, sink2 = _ship(location, tmp_path / "cursor")
    assert again.refused is not None and sink2.lines == []


def test_a_record_whose_hash_was_recomputed_is_held_back(location: str, tmp_path: Path) -> None:
    """Record 5 edited with its hash recomputed passes on its own; the break shows at record 6,
    which names both: neither is sent."""
    from charter.trace.record import link

    ids = _trace(location, 8)
    ((prev, body),) = raw(location, "SELECT prev, body FROM {trace} WHERE seq = 5")
    body = body.replace('"allow"', '"deny"')
    raw(
        location,
        "UPDATE {trace} SET body = ?, outcome = 'deny', hash = ? WHERE seq = 5",
        (body, link(prev, body)),
    )
    stats, sink = _ship(location, tmp_path / "cursor")
    assert stats.refused is not None and "record 6" in stats.refused
    assert [json.loads(line)["decision"]["id"] for line in sink.lines] == ids[:4]


def test_a_chain_rewritten_after_a_checkpoint_is_refused(location: str, tmp_path: Path) -> None:
    """The whole tail rewritten from record 2 (every hash recomputed) is a valid chain; the signed
    checkpoint at 3 pins the original: nothing of the batch holding it is sent."""
    from charter.trace.record import GENESIS, link

    _trace(location, 2)
    log = TraceLog(location)
    log.checkpoint()
    log.close()
    _trace(location, 3)
    rows = raw(location, "SELECT seq, body FROM {trace} ORDER BY seq")
    head = GENESIS
    for seq, body in rows:
        if seq >= 2:
            body = body.replace('"allow"', '"deny"')
        h = link(head, body)
        outcome = "deny" if seq >= 2 else "allow"
        raw(
            location,
            "UPDATE {trace} SET prev = ?, hash = ?, body = ?, outcome = ? WHERE seq = ?",
            (head, h, body, outcome, seq),
        )
        head = h
    stats, sink = _ship(location, tmp_path / "cursor")
    assert stats.refused is not None and "checkpoint" in stats.refused and sink.lines == []


def test_a_cursor_moved_to_another_chain_is_refused(location: str, tmp_path: Path) -> None:
    _trace(location, 4)
    stats, _ = _ship(location, tmp_path / "cursor")
    assert stats.cursor_seq == 4
    # the shipped record is rewritten (a whole new chain from it on would also be caught)
    raw(location, "UPDATE {trace} SET hash = 'forged' WHERE seq = 4")
    stats, sink = _ship(location, tmp_path / "cursor")
    assert "does not match the trace" in (stats.error or "") and sink.lines == []


def test_the_secret_is_in_the_trace_but_never_sent(location: str, tmp_path: Path) -> None:
    _trace(location, 3)
    assert all(SECRET in b for (b,) in raw(location, "SELECT body FROM {trace}"))
    stats, sink = _ship(location, tmp_path / "cursor")
    assert stats.shipped == 3 and sink.lines and not any(SECRET in line for line in sink.lines)
