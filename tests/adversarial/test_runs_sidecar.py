"""Hostile bodies, paths and roles on the sidecar's run routes and on Engine.narrow_run: refused
with a 4xx and a clear error, nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.adversarial.test_grants import _engine
from tests.server.conftest import auth
from tests.server.test_runs import http as _http  # noqa: F401  (the fixture)

from charter.errors import RequestError

GRANT = {"run": "r1", "actor": "assistant", "grants": [{"kind": "send-mail", "to": ["a@x"]}]}
H = {**auth("orch"), "content-type": "application/json"}


@pytest.fixture
def http(_http: Any) -> Iterator[Any]:  # noqa: F811
    assert _http.post("/v1/runs", json=GRANT, headers=auth("orch")).status_code == 201
    yield _http


def _grants(http: Any) -> Any:
    r = http.post("/v1/runs/r1/narrow", json={}, headers=auth("orch"))
    assert r.status_code == 200
    return r.json()["grants"]


@pytest.mark.parametrize(
    "body",
    [
        '{"uses":{"g1":"0"}}',
        '{"uses":{"g1":true}}',
        '{"uses":{"g1":false}}',
        '{"uses":{"g1":0.0}}',
        '{"uses":{"g1":NaN}}',
        '{"uses":{"g1":Infinity}}',
        '{"uses":{"g1":-1}}',
        '{"uses":{"g99":0}}',
        '{"revoke":["g99"]}',
        '{"revoke":["G1"]}',
        '{"revoke":[""]}',
        '{"revoke":"g1"}',
        '{"bogus":1}',
        "[" * 10_000 + "]" * 10_000,
    ],
)
def test_a_bad_narrow_is_refused_and_changes_nothing(http: Any, body: str) -> None:
    before = _grants(http)
    r = http.post("/v1/runs/r1/narrow", content=body, headers=H)
    assert r.status_code in (400, 422), r.text
    assert r.json()["error"]
    assert _grants(http) == before


def test_narrowing_an_unknown_run_is_refused(http: Any) -> None:
    r = http.post("/v1/runs/nope/narrow", json={"revoke": ["g1"]}, headers=auth("orch"))
    assert r.status_code == 422 and "no grant 'g1'" in r.json()["error"]


def test_narrow_twice_and_a_huge_count_never_widen(http: Any) -> None:
    r = http.post("/v1/runs/r1/narrow", json={"uses": {"g1": 10**30}}, headers=auth("orch"))
    assert r.status_code == 200 and r.json()["grants"][0]["uses_left"] == 1
    assert http.post("/v1/runs/r1/narrow", json={"revoke": ["g1"]}, headers=auth("orch")).status_code == 200
    again = http.post("/v1/runs/r1/narrow", json={"revoke": ["g1"]}, headers=auth("orch"))
    assert again.status_code == 422 and "already revoked" in again.json()["error"]
    assert _grants(http) == []


def test_engine_narrow_names_unknown_ids_and_writes_nothing() -> None:
    e = _engine()
    e.begin_run("r1", actor="assistant", grants=[{"kind": "send-mail", "to": ["a@x"], "count": 2}])
    with pytest.raises(RequestError, match="g7"):
        e.narrow_run("r1", revoke=["g1", "g7"])
    with pytest.raises(RequestError, match="g7"):
        e.narrow_run("r1", uses={"g1": 0, "g7": 0})
    assert e.narrow_run("r1").grants[0].uses_left == 2  # neither half of either call was applied


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/runs", '{"run":"r2","grants":[' + "[" * 10_000 + "]" * 10_000 + "]}"),
        ("/v1/runs", '{"run":"r2","grants":[{"kind":"send-mail","to":["a",NaN]}]}'),
        ("/v1/runs", '{"run":"r2","grants":[{"kind":"send-mail","to":["a@x"],"bogus":1}]}'),
        ("/v1/runs", '{"run":"r2","grants":[{"kind":5}]}'),
        ("/v1/runs", '{"run":"","grants":[]}'),
        ("/v1/runs", '{"run":"r2","grants":[],"x":1}'),
        ("/v1/runs/h1/history", '{"actor":"a","events":[{"call_id":"c","target":"t","at":NaN}]}'),
        ("/v1/runs/h1/history", '{"actor":"a","events":[{"call_id":"c","target":"t","at":Infinity}]}'),
        ("/v1/runs/h1/history", '{"actor":"a","events":' + "[" * 10_000 + "]" * 10_000 + "}"),
        ("/v1/runs/" + "x" * 5000 + "/history", '{"actor":"a","events":[]}'),
        ("/v1/runs/" + "x" * 5000 + "/narrow", "{}"),
        ("/v1/settle", '{"decision_id":"x","result":{"a":NaN}}'),
        ("/v1/settle", '{"decision_id":"x","result":' + '{"a":' * 10_000 + "1" + "}" * 10_000 + "}"),
        ("/v1/settle", '{"decision_id":"x","result":[]}'),
        ("/v1/settle", '{"decision_id":"x","result":"ok"}'),
    ],
)
def test_hostile_run_bodies_are_4xx(http: Any, path: str, body: str) -> None:
    r = http.post(path, content=body, headers=H)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]
    # nothing was written: the store has nothing of either run (an unknown run exports as 404)
    assert http.get("/v1/runs/r2", headers=auth("orch")).status_code == 404
    assert http.get("/v1/runs/h1", headers=auth("orch")).status_code == 404


def test_run_ids_in_paths_never_reach_another_run(http: Any) -> None:
    for path in ("/v1/runs/r1%2Fx", "/v1/runs/r1/x", "/v1/runs/..", "/v1/runs/%2e%2e"):
        r = http.get(path, headers=auth("orch"))
        # 404: no such route; 400: a run id the one rule refuses (a dot segment)
        assert r.status_code in (400, 404) or r.json()["run"] != "r1", path


@pytest.mark.parametrize("who", ["alice", "ops", None])
def test_history_and_export_need_the_decide_role(http: Any, who: str | None, tmp_path: Path) -> None:
    headers = auth(who) if who else {}
    want = 401 if who is None else 403
    body = {"actor": "a", "events": [{"call_id": "c", "target": "mail.send", "at": 1}]}
    assert http.post("/v1/runs/r1/history", json=body, headers=headers).status_code == want
    assert http.get("/v1/runs/r1", headers=headers).status_code == want
    assert http.get("/v1/runs/r1", headers=auth("orch")).json()["events"] == []
