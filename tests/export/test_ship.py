"""`charter trace ship`: decisions shipped from the trace by another process, verified and masked, no
record lost or duplicated across restarts and target outages, an edited row refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.trace import conftest as trace_fixtures

import charter
from charter.cli.main import cli
from charter.engine.engine import Engine
from charter.export import JsonlHttpSink, Masker, OtlpLogsSink
from charter.export.mask import MASKED
from charter.export.ship import Shipper
from charter.trace import TraceLog

POLICY = """
policy pay

tool pay.send {
  category write
  arg password: string
  arg account: string
  arg amount: double
  arg note: string secret
}

mask args.password
hash args.account

permit pay {
  action call pay.send
  when args.amount < 1000.0
  reason "payments go through"
}
"""
#: the trace tests' fixture: a fresh trace in a SQLite file, then in a PostgreSQL schema
location = trace_fixtures.location
raw = trace_fixtures.raw
SECRET = "hunter2-secret"
ACCOUNT = "DE89370400440532013000"


def request(i: int) -> dict[str, Any]:
    args = {"password": SECRET, "account": ACCOUNT, "amount": float(i * 100), "note": "private note"}
    return {"actor": {"id": "payments-agent"}, "action": {"target": "pay.send", "args": args}}


@pytest.fixture
def policy() -> charter.Policy:
    return charter.loads(POLICY)


def decide(policy: charter.Policy, trace: str, n: int, start: int = 0) -> list[str]:
    """n decisions written to the trace (closed: every record is stored); their ids in order."""
    log = TraceLog(trace)
    engine = Engine(policy, trace=log)
    ids = [engine.decide(request(start + i)).id for i in range(n)]
    log.close()
    return ids


def shipper(policy: charter.Policy, trace: str, url: str, cursor: Path | None, **kw: Any) -> Shipper:
    kw.setdefault("batch_size", 4)
    kw.setdefault("backoff_s", 0.01)
    return Shipper(
        trace, JsonlHttpSink(url, timeout=2), policy.masks, masker=Masker(b"k"), cursor=cursor, **kw
    )


def ids_of(records: list[dict[str, Any]]) -> list[str]:
    return [r["decision"]["id"] for r in records]


def test_ships_every_decision_masked_in_order(
    policy: charter.Policy, location: str, jsonl_target: Any, tmp_path: Path
) -> None:
    ids = decide(policy, location, 11)
    # the trace stores mask/hash arguments as given (only `secret` ones are redacted): the shipper masks
    stored = raw(location, "SELECT body FROM {trace}")
    assert any(SECRET in b for (b,) in stored) and not any("private note" in b for (b,) in stored)
    s = shipper(policy, location, f"http://127.0.0.1:{jsonl_target.port}/", tmp_path / "cursor")
    stats = s.run()
    assert stats.error is None and stats.refused is None
    assert stats.shipped == 11 and stats.batches == 3 and stats.cursor_seq == 11
    got = jsonl_target.wait(11)
    assert ids_of(got) == ids
    assert [r["trace"]["seq"] for r in got] == list(range(1, 12))
    args = got[0]["request"]["action"]["args"]
    assert args["password"] == MASKED and args["account"] == Masker(b"k").hashed(ACCOUNT)
    assert args["note"] == "[redacted]" and args["amount"] == 0.0
    assert got[0]["decision"]["outcome"] == "allow" and "evidence" not in got[0]["decision"]
    text = json.dumps(got)
    assert SECRET not in text and ACCOUNT not in text
    assert json.loads((tmp_path / "cursor").read_text())["seq"] == 11
    # caught up: a second run ships nothing
    assert (
        shipper(policy, location, f"http://127.0.0.1:{jsonl_target.port}/", tmp_path / "cursor").run().shipped
        == 0
    )
    assert len(jsonl_target.records) == 11


def test_restart_goes_on_from_the_cursor(policy: charter.Policy, jsonl_target: Any, tmp_path: Path) -> None:
    trace = str(tmp_path / "t.db")
    ids = decide(policy, trace, 10)
    url = f"http://127.0.0.1:{jsonl_target.port}/"
    first = shipper(policy, trace, url, tmp_path / "cursor")
    inner = first.sink.send_encoded  # type: ignore[attr-defined]

    def stop_after_two(records: Any, lines: Any) -> None:
        inner(records, lines)
        if jsonl_target.requests == 2:
            first.stop()  # as SIGTERM does: the batch in flight is finished and its cursor saved

    first.sink.send_encoded = stop_after_two  # type: ignore[attr-defined]
    stats = first.run()
    assert stats.stopped and stats.shipped == 8 and stats.cursor_seq == 8
    more = decide(policy, trace, 3, start=10)
    second = shipper(policy, trace, url, tmp_path / "cursor").run()
    assert second.first_seq == 9 and second.shipped == 5
    assert ids_of(jsonl_target.wait(13)) == ids + more  # nothing lost, nothing twice


def test_target_down_then_up_loses_nothing(policy: charter.Policy, jsonl_target: Any, tmp_path: Path) -> None:
    trace = str(tmp_path / "t.db")
    ids = decide(policy, trace, 9)
    jsonl_target.status = 503
    s = shipper(
        policy, trace, f"http://127.0.0.1:{jsonl_target.port}/", tmp_path / "cursor", max_backoff_s=0.05
    )
    t = threading.Thread(target=s.run)
    t.start()
    deadline = time.monotonic() + 10
    while s.stats.retries < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s.stats.retries >= 5 and s.stats.shipped == 0 and not jsonl_target.records
    jsonl_target.status = 200
    t.join(10)
    assert ids_of(jsonl_target.wait(9)) == ids and s.stats.shipped == 9 and s.stats.error is None


def test_connection_refused_gives_up_only_when_told(
    policy: charter.Policy, closed_port: int, tmp_path: Path
) -> None:
    trace = str(tmp_path / "t.db")
    decide(policy, trace, 3)
    s = shipper(policy, trace, f"http://127.0.0.1:{closed_port}/", tmp_path / "cursor", give_up_s=0.2)
    stats = s.run()
    assert stats.shipped == 0 and stats.retries >= 1 and "gave up" in (stats.error or "")
    assert not (tmp_path / "cursor").exists()  # nothing acknowledged, nothing skipped


def test_a_refusing_target_stops_the_run(policy: charter.Policy, jsonl_target: Any, tmp_path: Path) -> None:
    trace = str(tmp_path / "t.db")
    decide(policy, trace, 3)
    jsonl_target.status = 400
    stats = shipper(policy, trace, f"http://127.0.0.1:{jsonl_target.port}/", tmp_path / "cursor").run()
    assert stats.shipped == 0 and "refused" in (stats.error or "") and stats.retries == 0


@pytest.mark.parametrize("edit", ["body", "column"])
def test_an_edited_row_is_refused_not_shipped(
    policy: charter.Policy, location: str, jsonl_target: Any, tmp_path: Path, edit: str
) -> None:
    ids = decide(policy, location, 10)
    if edit == "body":
        (body,) = raw(location, "SELECT body FROM {trace} WHERE seq = 6")[0]
        raw(location, "UPDATE {trace} SET body = ? WHERE seq = 6", (body.replace('"allow"', '"deny"', 1),))
    else:
        raw(location, "UPDATE {trace} SET outcome = 'deny' WHERE seq = 6")
    stats = shipper(policy, location, f"http://127.0.0.1:{jsonl_target.port}/", tmp_path / "cursor").run()
    assert stats.refused is not None and "record 6" in stats.refused
    assert stats.shipped == 5 and stats.cursor_seq == 5
    assert ids_of(jsonl_target.wait(5)) == ids[:5]
    # a restart refuses it again: it is never shipped
    again = shipper(policy, location, f"http://127.0.0.1:{jsonl_target.port}/", tmp_path / "cursor").run()
    assert again.refused is not None and again.shipped == 0 and len(jsonl_target.records) == 5


def test_a_cursor_of_another_trace_is_refused(
    policy: charter.Policy, jsonl_target: Any, tmp_path: Path
) -> None:
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    decide(policy, a, 3)
    decide(policy, b, 3)
    url = f"http://127.0.0.1:{jsonl_target.port}/"
    assert shipper(policy, a, url, tmp_path / "cursor").run().shipped == 3
    stats = shipper(policy, b, url, tmp_path / "cursor").run()
    assert stats.shipped == 0 and "does not match the trace" in (stats.error or "")


def test_follow_ships_new_decisions(
    policy: charter.Policy, location: str, jsonl_target: Any, tmp_path: Path
) -> None:
    s = shipper(policy, location, f"http://127.0.0.1:{jsonl_target.port}/", tmp_path / "cursor", poll_s=0.02)
    t = threading.Thread(target=s.run, kwargs={"follow": True})
    t.start()  # before the trace exists: it waits for it
    try:
        ids = decide(policy, location, 5)
        assert ids_of(jsonl_target.wait(5)) == ids
        ids += decide(policy, location, 6, start=5)
        assert ids_of(jsonl_target.wait(11)) == ids
    finally:
        s.stop()
        t.join(10)
    assert s.stats.error is None and s.stats.stopped and s.stats.cursor_seq == 11


def test_otlp_target(policy: charter.Policy, otlp_target: Any, tmp_path: Path) -> None:
    trace = str(tmp_path / "t.db")
    ids = decide(policy, trace, 5)
    sink = OtlpLogsSink(f"http://127.0.0.1:{otlp_target.port}/v1/logs")
    stats = Shipper(trace, sink, policy.masks, cursor=tmp_path / "cursor", batch_size=2).run()
    sink.close()
    assert stats.shipped == 5
    got = otlp_target.wait(5)
    assert [g["attributes"]["charter.decision_id"] for g in got] == ids
    assert got[0]["body"]["request"]["action"]["args"]["password"] == MASKED
    assert SECRET not in json.dumps(got) and ACCOUNT not in json.dumps(got)


def test_cli_json_summary(policy: charter.Policy, jsonl_target: Any, tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "pay.charter").write_text(POLICY)
    trace = str(tmp_path / "t.db")
    decide(policy, trace, 4)
    args = ["trace", "ship", "--trace", trace, "--to", f"jsonl:http://127.0.0.1:{jsonl_target.port}/"]
    args += ["--policy", str(tmp_path / "p"), "--cursor", str(tmp_path / "c"), "--format", "json"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["ok"] and out["shipped"] == 4 and out["cursor_seq"] == 4 and out["target"].startswith("jsonl ")
    assert SECRET not in json.dumps(jsonl_target.wait(4))


@pytest.mark.parametrize("target", ["up", "down"])
def test_sigterm_saves_the_cursor_and_exits_0(
    policy: charter.Policy, jsonl_target: Any, tmp_path: Path, target: str
) -> None:
    """Idle or in a retry backoff, a signal stops it at once. (The stop is a flag it polls: a
    signal handler setting a threading.Event deadlocked when it interrupted Event.wait.)"""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "pay.charter").write_text(POLICY)
    trace = str(tmp_path / "t.db")
    decide(policy, trace, 3)
    cmd = [sys.executable, "-m", "charter", "trace", "ship", "--trace", trace, "--follow", "--poll", "0.05"]
    cmd += ["--to", f"jsonl:http://127.0.0.1:{jsonl_target.port}/", "--policy", str(tmp_path / "p")]
    cmd += ["--cursor", str(tmp_path / "c"), "--format", "json"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if target == "down":
        jsonl_target.status = 503
    try:
        if target == "up":
            jsonl_target.wait(3, timeout=30)
        else:
            with jsonl_target.got:
                jsonl_target.got.wait_for(lambda: jsonl_target.requests >= 2, 30)
        proc.send_signal(signal.SIGTERM)  # idle (up) or in a retry backoff (down)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["stopped"] and summary["shipped"] == (3 if target == "up" else 0)
    if target == "up":
        assert json.loads((tmp_path / "c").read_text())["seq"] == 3
    else:
        assert summary["retries"] >= 1 and not (tmp_path / "c").exists()
