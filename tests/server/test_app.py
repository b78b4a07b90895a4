"""Endpoints, auth, limits and failure paths of the sidecar, through the in-process ASGI client."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import charter
from charter.server import Runtime, create_app
from charter.state import StoreError, StoreFault
from charter.state.memory import MemoryStore

from .conftest import TestClient, auth, req, token_set, write_policy


def test_decide_allows_and_names_the_revision(http: TestClient, runtime: Runtime) -> None:
    r = http.post("/v1/decide", json=req(), headers=auth("orch"))
    assert r.status_code == 200
    d = r.json()
    assert d["outcome"] == "allow" and d["revision"] == runtime.engine.policy.revision
    assert [h["id"] for h in d["rules"]] == ["search"]


def test_unknown_tool_is_denied(http: TestClient) -> None:
    d = http.post("/v1/decide", json=req("nope"), headers=auth("orch")).json()
    assert d["outcome"] == "deny"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope-nope-nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
    ],
)
def test_no_or_bad_token_is_401(http: TestClient, headers: dict[str, str]) -> None:
    r = http.post("/v1/decide", json=req(), headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("key", "method", "path", "body"),
    [
        ("alice", "POST", "/v1/decide", req()),
        ("ops", "POST", "/v1/decide", req()),
        ("orch", "POST", "/v1/stops", {"scope": "global", "reason": "x"}),
        ("alice", "POST", "/v1/stops", {"scope": "global", "reason": "x"}),
        ("orch", "POST", "/v1/approvals/ap-1/approve", {"note": ""}),
        ("ops", "POST", "/v1/escalations/es-1/answer", {"verdict": "allow"}),
        ("ops", "GET", "/v1/approvals", None),
        ("alice", "GET", "/v1/stops", None),
    ],
)
def test_wrong_role_is_403(http: TestClient, key: str, method: str, path: str, body: Any) -> None:
    r = http.request(method, path, json=body, headers=auth(key))
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "forbidden"


def test_admin_may_do_everything(http: TestClient) -> None:
    assert http.post("/v1/decide", json=req(), headers=auth("admin")).status_code == 200
    assert http.get("/v1/approvals", headers=auth("admin")).status_code == 200
    assert http.get("/v1/stops", headers=auth("admin")).status_code == 200


def test_the_approver_is_the_token_not_the_body(http: TestClient) -> None:
    d = http.post("/v1/decide", json=req("big"), headers=auth("orch")).json()
    assert d["outcome"] == "require_approval"
    aid = d["obligations"]["approval_id"]
    r = http.post(f"/v1/approvals/{aid}/approve", json={"note": "ok", "by": "bob"}, headers=auth("alice"))
    assert r.status_code == 422 and r.json()["field"] == "by"
    r = http.post(f"/v1/approvals/{aid}/approve", json={"note": "ok"}, headers=auth("alice"))
    assert r.status_code == 200
    assert r.json()["status"] == "approved" and r.json()["approvals"][0]["by"] == "alice"
    again = http.post(f"/v1/approvals/{aid}/approve", json={}, headers=auth("alice"))
    assert again.status_code == 409
    ok = http.post("/v1/decide", json=req("big", approval=aid), headers=auth("orch")).json()
    assert ok["outcome"] == "allow"
    replay = http.post("/v1/decide", json=req("big", approval=aid), headers=auth("orch")).json()
    assert replay["outcome"] != "allow"
    got = http.get(f"/v1/approvals/{aid}", headers=auth("orch")).json()
    assert got["status"] == "redeemed"
    assert http.get("/v1/approvals/ap-nope", headers=auth("orch")).status_code == 404


def test_an_approver_outside_the_group_is_403(http: TestClient) -> None:
    aid = http.post("/v1/decide", json=req("big"), headers=auth("orch")).json()["obligations"]["approval_id"]
    r = http.post(f"/v1/approvals/{aid}/approve", json={}, headers=auth("admin"))  # root: not in finance
    assert r.status_code == 403 and r.json()["code"] == "not-approver"
    r = http.post(f"/v1/approvals/{aid}/deny", json={"note": "no"}, headers=auth("bob"))
    assert r.status_code == 200 and r.json()["status"] == "denied"
    lst = http.get("/v1/approvals?status=denied", headers=auth("alice")).json()["items"]
    assert [a["id"] for a in lst] == [aid]


def test_stops_are_by_the_token_and_resume_needs_two(http: TestClient) -> None:
    stop = {"scope": "agent", "value": "a1", "reason": "runaway"}
    r = http.post("/v1/stops", json=stop, headers=auth("ops"))
    assert r.status_code == 200 and r.json()["by"] == "ops"
    assert http.post("/v1/decide", json=req(), headers=auth("orch")).json()["outcome"] == "halt"
    assert http.post("/v1/decide", json=req(agent="a2"), headers=auth("orch")).json()["outcome"] == "allow"
    assert len(http.get("/v1/stops", headers=auth("orch")).json()["items"]) == 1
    assert "charter_active_stops 1" in http.get("/metrics").text
    body = {"scope": "agent", "value": "a1"}
    r1 = http.post("/v1/stops/resume", json=body, headers=auth("ops")).json()
    assert r1["resumed"] is False and r1["need"] == 2
    assert http.post("/v1/stops/resume", json=body, headers=auth("ops")).status_code == 409
    assert http.post("/v1/stops/resume", json=body, headers=auth("ops2")).json()["resumed"] is True
    assert http.post("/v1/decide", json=req(), headers=auth("orch")).json()["outcome"] == "allow"
    bad = http.post("/v1/stops", json={"scope": "planet", "reason": "x"}, headers=auth("ops"))
    assert bad.status_code == 422 and bad.json()["field"] == "scope"


def test_settle_commits_and_unknown_is_404(http: TestClient) -> None:
    d = http.post(
        "/v1/decide", json=req("pay", context={"workflow": "w"}, cost={"USD": 4}), headers=auth("orch")
    ).json()
    assert d["outcome"] == "allow" and d["hold_id"]
    body = {"decision_id": d["id"], "actual_cost": {"USD": 3}}
    st = http.post("/v1/settle", json=body, headers=auth("orch"))
    assert st.status_code == 200 and st.json()["committed"] is True
    assert http.post("/v1/settle", json={"decision_id": d["id"]}, headers=auth("orch")).status_code == 404
    assert http.post("/v1/settle", json={"decision_id": ""}, headers=auth("orch")).status_code == 422


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{", 400, "body"),
        (b"[]", 422, "body"),
        (b'"x"', 422, "body"),
        (b"{}", 422, "actor"),
        (b'{"actor": {"id": "a"}}', 422, "action"),
        (b'{"actor": {"id": 5}, "action": {"target": "search"}}', 422, "actor.id"),
        (b'{"actor": {"id": "a"}, "action": {"target": "search"}, "cost": {"USD": -1}}', 422, "cost"),
        (b'{"actor": {"id": "a"}, "action": {"target": "search"}, "extra": 1}', 422, "extra"),
        (b'{"actor": {"id": "a"}, "action": {"kind": "fly", "target": "search"}}', 422, "action.kind"),
        (b'{"actor": {"id": "a"}, "action": {"kind": ["call"], "target": "search"}}', 422, "action.kind"),
        (b"[" * 100000 + b"]" * 100000, 413, None),
    ],
)
def test_malformed_requests_name_the_field(
    http: TestClient, body: bytes, status: int, field: str | None
) -> None:
    r = http.post("/v1/decide", content=body, headers={**auth("orch"), "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    if field is not None:
        assert (r.json()["field"] or "").startswith(field), r.json()


def test_body_limit_without_content_length(http: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(100):
            yield b" " * 4096

    r = http.post("/v1/decide", content=chunks(), headers=auth("orch"))
    assert r.status_code == 413


class SlowStore(MemoryStore):
    """A store whose apply takes ``delay`` seconds (and can be made to fail)."""

    def __init__(self, delay: float = 0.0):
        super().__init__()
        self.delay = delay
        self.down = False
        self.released: list[str] = []
        self.done = threading.Event()

    def apply(self, batch: Any) -> Any:
        time.sleep(self.delay)
        if self.down:
            raise StoreError(StoreFault.UNAVAILABLE, "memory", "injected")
        try:
            return super().apply(batch)
        finally:
            self.done.set()

    def release(self, hold_id: str, *, now: float) -> bool:
        self.released.append(hold_id)
        return super().release(hold_id, now=now)

    def ping(self) -> None:
        if self.down:
            raise StoreError(StoreFault.UNAVAILABLE, "memory", "injected")


def _app(policy_dir: Any, store: Any, **kw: Any) -> TestClient:
    rt = Runtime(charter.load(policy_dir), store, None, policy_path=str(policy_dir), poll_s=0)
    sidecar = create_app(rt, token_set(), **kw)
    sidecar.state.runtime = rt
    return TestClient(sidecar)


def test_time_limit_is_503_never_allow_and_the_hold_is_given_back(tmp_path: Any) -> None:
    store = SlowStore(delay=0.5)
    with _app(write_policy(tmp_path / "p"), store, time_limit_s=0.1) as http:
        r = http.post(
            "/v1/decide", json=req("pay", context={"workflow": "w"}, cost={"USD": 1}), headers=auth("orch")
        )
        assert r.status_code == 503 and r.json()["code"] == "timeout"
        assert store.done.wait(5)
        deadline = time.time() + 5
        while not store.released and time.time() < deadline:
            time.sleep(0.01)
        assert len(store.released) == 1
        assert "charter_decide_timeouts_total 1" in http.get("/metrics").text


def test_store_down_denies_and_readyz_is_503(tmp_path: Any) -> None:
    store = SlowStore()
    with _app(write_policy(tmp_path / "p"), store) as http:
        store.down = True
        d = http.post(
            "/v1/decide", json=req("pay", context={"workflow": "w"}, cost={"USD": 1}), headers=auth("orch")
        ).json()
        assert d["outcome"] == "deny" and d["failures"]
        r = http.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["store"] is False
        assert "state store unreachable" in r.json()["reasons"][0]
        text = http.get("/metrics").text
        assert "charter_store_errors_total" in text and 'charter_decisions_total{outcome="deny"} 1' in text


def test_health_and_metrics(http: TestClient, runtime: Runtime) -> None:
    assert http.get("/livez").json()["status"] == "ok"
    ready = http.get("/readyz").json()
    assert ready["status"] == "ok" and ready["checks"] == {"policy": True, "store": True, "trace": True}
    http.post("/v1/decide", json=req(), headers=auth("orch"))
    http.post("/v1/decide", json=req("big"), headers=auth("orch"))
    text = http.get("/metrics").text
    assert 'charter_decisions_total{outcome="allow"} 1' in text
    assert 'charter_decisions_total{outcome="require_approval"} 1' in text
    assert "charter_decide_seconds_count 2" in text
    assert "charter_pending_approvals 1" in text
    assert f'charter_policy_info{{revision="{runtime.engine.policy.revision}"' in text
    assert "charter_fail_open_total 0" in text and "charter_reload_failures_total 0" in text


def test_explain_reads_the_trace(http: TestClient) -> None:
    d = http.post("/v1/decide", json=req(), headers=auth("orch")).json()
    r = http.get(f"/v1/decisions/{d['id']}", headers=auth("orch"))
    assert r.status_code == 200
    assert r.json()["record"]["outcome"] == "allow"
    assert any("allowed" in line for line in r.json()["explanation"])
    assert http.get("/v1/decisions/d-nope", headers=auth("orch")).status_code == 404


def test_explain_without_trace_is_404(tmp_path: Any) -> None:
    with _app(write_policy(tmp_path / "p"), MemoryStore()) as http:
        r = http.get("/v1/decisions/d-1", headers=auth("orch"))
        assert r.status_code == 404 and r.json()["code"] == "no-trace"


def test_no_token_in_logs(http: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    http.post("/v1/decide", json=req(), headers={"Authorization": "Bearer secret-value-that-must-not-leak"})
    http.post("/v1/stops", json={"scope": "agent", "value": "x", "reason": "r"}, headers=auth("ops"))
    assert "secret-value" not in caplog.text and "test-token" not in caplog.text


def test_without_tokens_the_app_refuses_to_start(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="no bearer tokens"):
        create_app(runtime, None)
