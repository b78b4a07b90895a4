"""POST /v1/runs and /v1/runs/{run}/narrow: 201, 409 run-started, 422 diagnostics, orchestrator role;
the run-begin and run-narrow trace records."""

from __future__ import annotations

import asyncio
import sqlite3
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

import charter
from charter.client import AsyncClient, Client
from charter.engine.grants import GrantError
from charter.server import Runtime, create_app
from charter.state.memory import MemoryStore
from charter.trace.verify import verify_log

from .conftest import auth, secret, token_set, write_policy
from .procs import Serve

POLICY = """
policy runs
tool mail.send {
  arg to: list of string
}
grant send-mail {
  action call mail.send
  param to: set of string = []
  covers args.to.all(r, r in grant.to)
  bound grant.to.size() > 0
  uses 1
  reason "Mail the user asked for."
}
permit mail {
  action call mail.send
  when granted("send-mail")
  reason "Covered by a grant of this run."
}
"""


@pytest.fixture
def http(tmp_path: Path) -> Iterator[TestClient]:
    from charter.trace import TraceLog

    root = write_policy(tmp_path / "policy", POLICY)
    rt = Runtime(
        charter.load(root), MemoryStore(), TraceLog(tmp_path / "trace.db"), policy_path=str(root), poll_s=0
    )
    app = create_app(rt, token_set(), max_body=64 * 1024, time_limit_s=2.0)
    with TestClient(app) as c:
        yield c


def _mail(run: str, to: str) -> dict[str, object]:
    return {
        "actor": {"id": "assistant"},
        "action": {"kind": "call", "target": "mail.send", "args": {"to": [to]}},
        "context": {"run": run},
    }


def test_begin_decide_narrow(http: TestClient, tmp_path: Path) -> None:
    body = {"run": "r1", "actor": "assistant", "grants": [{"kind": "send-mail", "to": ["a@x"]}]}
    r = http.post("/v1/runs", json=body, headers=auth("orch"))
    assert r.status_code == 201
    assert r.json()["grants"] == [
        {"id": "g1", "kind": "send-mail", "uses_left": 1, "params": {"to": ["a@x"]}}
    ]
    d = http.post("/v1/decide", json=_mail("r1", "a@x"), headers=auth("orch")).json()
    assert d["outcome"] == "allow"
    assert d["grants"] == [{"id": "g1", "kind": "send-mail", "covers": True, "uses_left": 1}]
    assert {"kind": "grant", "id": "g1", "ok": True, "used": 1, "limit": 1, "detail": "send-mail"} in d[
        "boundaries"
    ]
    again = http.post("/v1/runs", json=body, headers=auth("orch"))
    assert again.status_code == 409 and again.json()["code"] == "run-started"
    assert again.json()["diagnostics"][0]["code"] == "G105"
    n = http.post("/v1/runs/r1/narrow", json={"revoke": ["g1"]}, headers=auth("orch"))
    assert n.status_code == 200 and n.json()["grants"] == []


def test_refused_grants_are_422_with_diagnostics(http: TestClient) -> None:
    body = {"run": "r2", "grants": [{"kind": "send-mail", "to": ["a@x"]}, {"kind": "send-mial"}]}
    r = http.post("/v1/runs", json=body, headers=auth("orch"))
    assert r.status_code == 422
    out = r.json()
    assert out["code"] == "grants-refused" and out["refused"] == [1]
    assert out["diagnostics"][0]["code"] == "G101" and "send-mail" in out["diagnostics"][0]["help"]
    assert http.post("/v1/decide", json=_mail("r2", "a@x"), headers=auth("orch")).json()["outcome"] == "deny"


def test_only_the_orchestrator_declares_grants(http: TestClient) -> None:
    body = {"run": "r3", "grants": [{"kind": "send-mail", "to": ["a@x"]}]}
    assert http.post("/v1/runs", json=body, headers=auth("alice")).status_code == 403
    assert http.post("/v1/runs", json=body, headers=auth("ops")).status_code == 403
    assert http.post("/v1/runs", json=body).status_code == 401
    assert http.post("/v1/runs/r3/narrow", json={}, headers=auth("alice")).status_code == 403


def test_trace_records_run_begin_and_narrow(tmp_path: Path) -> None:
    from charter.trace import TraceLog

    root = write_policy(tmp_path / "policy", POLICY)
    trace = TraceLog(tmp_path / "t.db", durable=True)
    engine = charter.Engine(charter.load(root), trace=trace)
    engine.begin_run("r1", actor="assistant", grants=[{"kind": "send-mail", "to": ["a@x"]}])
    engine.narrow_run("r1", revoke=["g1"])
    trace.close()
    with sqlite3.connect(tmp_path / "t.db") as db:
        kinds = [r[0] for r in db.execute("SELECT kind FROM trace ORDER BY seq")]
    assert kinds == ["run-begin", "run-narrow"]
    assert verify_log(tmp_path / "t.db").ok  # in the hash chain


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    tmp = tmp_path_factory.mktemp("serve-runs")
    s = Serve(write_policy(tmp / "policy", POLICY), "memory://", tmp, "--poll", "0")
    try:
        s.wait_ready()
        yield s
    finally:
        s.stop()


def test_clients_begin_and_narrow_like_the_engine(served: Serve) -> None:
    grants = [{"kind": "send-mail", "to": ["a@x"]}]
    with Client(served.url, secret("orch")) as c:
        run = c.begin_run("rc1", actor="assistant", grants=grants)
        assert [(g.id, g.kind, g.uses_left) for g in run.grants] == [("g1", "send-mail", 1)]
        d = c.decide(_mail("rc1", "a@x"))
        assert d.allowed and d.to_dict()["grants"][0]["covers"] is True
        with pytest.raises(GrantError) as err:
            c.begin_run("rc1", actor="assistant", grants=grants)
        assert err.value.run_started
        with pytest.raises(GrantError) as err:
            c.begin_run("rc2", grants=[{"kind": "send-mial"}])
        assert err.value.refused == (0,) and err.value.problems[0].code == "G101"
        assert c.narrow_run("rc1", revoke=["g1"]).grants == ()

    async def main() -> None:
        async with AsyncClient(served.url, secret("orch")) as ac:
            run = await ac.begin_run("ra1", actor="assistant", grants=grants)
            assert run.grants[0].id == "g1"
            assert (await ac.decide(_mail("ra1", "a@x"))).allowed
            assert (await ac.narrow_run("ra1", uses={"g1": 0})).grants[0].uses_left == 0
            with pytest.raises(GrantError):
                await ac.begin_run("ra1", actor="assistant", grants=grants)

    asyncio.run(asyncio.wait_for(main(), 60))
