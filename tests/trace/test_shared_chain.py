"""Several processes appending to one chain, and what a dropped PostgreSQL connection does."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.state.conftest import need_pg, pg_cleanup
from tests.trace.conftest import pg_url, raw

import charter
from charter import Outcome
from charter.cli.main import cli
from charter.trace import TraceError, TraceLog, verify_log

POLICY = """
tool pay { arg amount: double }
permit p { action call pay  reason "ok" }
"""

PROCS = 4
PER_PROC = 300


def _req(i: int, who: str = "a") -> dict[str, Any]:
    return {"actor": {"id": who}, "action": {"target": "pay", "args": {"amount": float(i)}}}


def _append_many(location: str, who: str, n: int, durable: bool, start: Any) -> None:
    """Child process: decide n requests tracing to the shared chain (small batches, many races)."""
    log = TraceLog(location, batch=7, flush_s=0.001, durable=durable)
    engine = charter.Engine(charter.loads(POLICY), trace=log)
    start.wait(60)  # every process ready: the appends race (a spawned import takes ~1 s)
    for i in range(n):
        d = engine.decide(_req(i, who))
        assert d.outcome is Outcome.ALLOW, d.failures
        if i % 50 == 0:
            log.record_event("stop", {"id": f"{who}-{i}", "scope": "agent", "value": who})
    log.checkpoint()
    log.close()


@pytest.mark.parametrize("durable", [False, True], ids=["batched", "durable"])
def test_concurrent_appends_from_four_processes_make_one_chain(location: str, durable: bool) -> None:
    TraceLog(location).close()  # create the tables before the race
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(PROCS)
    procs = [
        ctx.Process(target=_append_many, args=(location, f"p{k}", PER_PROC, durable, start))
        for k in range(PROCS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * PROCS
    events = PROCS * (PER_PROC // 50)
    rep = verify_log(location)
    assert rep.ok, rep.problems
    assert rep.records == PROCS * PER_PROC + events
    assert rep.checkpoints == PROCS  # every process's checkpoint vouches for a prefix of the chain
    seqs = [r[0] for r in raw(location, "SELECT seq FROM {trace} ORDER BY seq")]
    assert seqs == list(range(1, rep.records + 1))
    agents = raw(location, "SELECT agent, count(*) FROM {trace} WHERE kind = 'decision' GROUP BY agent")
    assert sorted(agents) == [(f"p{k}", PER_PROC) for k in range(PROCS)]
    # interleaved, not one process after the other (which would switch agents PROCS - 1 times)
    order = [r[0] for r in raw(location, "SELECT agent FROM {trace} WHERE kind = 'decision' ORDER BY seq")]
    assert sum(1 for a, b in itertools.pairwise(order) if a != b) > PROCS - 1


class Proxy:
    """A TCP forwarder to PostgreSQL that a test can cut (drop every connection, or go away)."""

    def __init__(self, port: int = 5432) -> None:
        self.target = ("127.0.0.1", port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.accepting = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.accepting:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def drop(self) -> None:
        """Cut every open connection (the server restarted, the network blinked)."""
        for s in self.conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.conns.clear()

    def close(self) -> None:
        """Cut everything and refuse new connections (the server is gone)."""
        self.accepting = False
        self.drop()


@pytest.fixture
def proxied(tmp_path: Path) -> Any:
    need_pg()
    schema = "tr_" + uuid.uuid4().hex[:12]
    proxy = Proxy()
    direct = pg_url(schema, tmp_path / "trace.key")
    via = direct.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    try:
        yield proxy, via, direct
    finally:
        proxy.close()
        pg_cleanup(schema)


@pytest.mark.parametrize("durable", [False, True], ids=["batched", "durable"])
def test_one_dropped_connection_is_reconnected_without_loss(proxied: Any, durable: bool) -> None:
    proxy, via, direct = proxied
    log = TraceLog(via, durable=durable)
    engine = charter.Engine(charter.loads(POLICY), trace=log)
    for i in range(20):
        assert engine.decide(_req(i)).outcome is Outcome.ALLOW
    log.flush()
    proxy.drop()
    for i in range(20):
        assert engine.decide(_req(i)).outcome is Outcome.ALLOW
    log.close()
    rep = verify_log(direct)
    assert rep.ok and rep.records == 40


@pytest.mark.parametrize("durable", [False, True], ids=["batched", "durable"])
def test_server_gone_fails_closed(proxied: Any, durable: bool) -> None:
    proxy, via, direct = proxied
    log = TraceLog(via, durable=durable, flush_s=0.001)
    engine = charter.Engine(charter.loads(POLICY), trace=log)
    assert engine.decide(_req(1)).outcome is Outcome.ALLOW
    log.flush()
    assert log.problem() is None
    proxy.close()
    if not durable:
        # the batch queued when the server went away cannot be written: the log fails ...
        engine.decide(_req(2))
        with pytest.raises(TraceError):
            log.flush()
    # ... and from then on (durable: at once) every decision is denied with a trace failure
    for i in range(3):
        d = engine.decide(_req(i))
        assert d.outcome is Outcome.DENY and d.failures[-1].where == "trace", d.failures
    assert log.problem() is not None
    log.close()
    assert verify_log(direct).ok  # what was written is intact


def test_unreachable_or_missing_postgresql_trace_is_a_clear_error(tmp_path: Path) -> None:
    need_pg()
    gone = "postgresql://postgres:hunter2@127.0.0.1:1/test?schema=tr_x&connect_timeout=1"
    with pytest.raises(TraceError) as err:
        TraceLog(gone)
    assert "hunter2" not in str(err.value) and "127.0.0.1:1" in str(err.value)
    r = CliRunner()
    res = r.invoke(cli, ["trace", "verify", "--trace", gone])
    assert res.exit_code == 1 and "cannot read trace log" in res.output and "hunter2" not in res.output
    missing = pg_url("tr_" + uuid.uuid4().hex[:12], tmp_path / "k")
    res = r.invoke(cli, ["trace", "list", "--trace", missing])
    assert res.exit_code == 1 and "no trace log at" in res.output
    res = r.invoke(cli, ["trace", "checkpoint", "--trace", gone])
    assert res.exit_code == 1 and "cannot open trace log" in res.output


def test_replay_and_checkpoint_cli_on_postgresql(tmp_path: Path) -> None:
    need_pg()
    schema = "tr_" + uuid.uuid4().hex[:12]
    url = pg_url(schema, tmp_path / "trace.key")
    try:
        log = TraceLog(url)
        engine = charter.Engine(charter.loads(POLICY), trace=log)
        for i in range(5):
            engine.decide(_req(i * 100))
        log.close()
        stricter = tmp_path / "strict.charter"
        stricter.write_text(
            POLICY + 'forbid big { action call pay\n  when args.amount > 250.0\n  reason "no" }\n'
        )
        r = CliRunner()
        res = r.invoke(cli, ["replay", str(stricter), "--trace", url, "--format", "json"])
        assert res.exit_code == 0, res.output
        import json

        report = json.loads(res.output)
        assert report["replayed"] == 5 and report["transitions"] == {"allow -> deny": 2}
        res = r.invoke(cli, ["trace", "checkpoint", "--trace", url, "--out", str(tmp_path / "cp.json")])
        assert res.exit_code == 0 and (tmp_path / "trace.key").exists()
        res = r.invoke(cli, ["trace", "verify", "--trace", url, "--checkpoint", str(tmp_path / "cp.json")])
        assert res.exit_code == 0 and "OK: 5 records" in res.output
    finally:
        pg_cleanup(schema)
