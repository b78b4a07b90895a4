"""The committed OpenAPI snapshot, and hot reload (file change, broken policy, SIGHUP)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from charter.server import Runtime
from charter.server.wire import openapi

from .conftest import POLICY, TestClient, auth, req

SNAPSHOT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_openapi_matches_the_committed_snapshot(http: TestClient) -> None:
    served = http.get("/openapi.json").json()
    want = json.loads(SNAPSHOT.read_text("utf-8"))
    served["info"]["version"] = want["info"]["version"] = "x"
    assert served == want, (
        "the wire types changed: regenerate docs/openapi.json "
        "(see docs/sidecar.md) and bump WIRE_SCHEMA_VERSION if a field changed"
    )
    assert openapi("x")["paths"].keys() == want["paths"].keys()


def _touch(p: Path, text: str) -> None:
    p.write_text(text, "utf-8")
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def test_reload_swaps_a_good_policy_and_keeps_pending_settlements(
    http: TestClient, runtime: Runtime, policy_file: Path
) -> None:
    old = runtime.engine.policy.revision
    held = http.post(
        "/v1/decide", json=req("pay", context={"workflow": "w"}, cost={"USD": 2}), headers=auth("orch")
    ).json()
    assert http.post("/v1/decide", json=req("extra"), headers=auth("orch")).json()["outcome"] == "deny"
    _touch(policy_file / "policy.charter", POLICY + "\ntool extra { }\npermit extra { action call extra }\n")
    assert runtime.check_files() is True
    new = runtime.engine.policy.revision
    assert new != old
    d = http.post("/v1/decide", json=req("extra"), headers=auth("orch")).json()
    assert d["outcome"] == "allow" and d["revision"] == new
    st = http.post("/v1/settle", json={"decision_id": held["id"]}, headers=auth("orch"))
    assert st.status_code == 200 and st.json()["committed"] is True
    assert "charter_policy_reloads_total 1" in http.get("/metrics").text


def test_a_broken_policy_keeps_the_last_good_one(
    http: TestClient, runtime: Runtime, policy_file: Path, caplog: object
) -> None:
    old = runtime.engine.policy.revision
    _touch(policy_file / "policy.charter", POLICY + "\npermit broken {\n")
    assert runtime.check_files() is False
    assert runtime.engine.policy.revision == old
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["reload_error"] and "policy.charter:" in ready.json()["reload_error"]
    d = http.post("/v1/decide", json=req(), headers=auth("orch")).json()
    assert d["outcome"] == "allow" and d["revision"] == old
    text = http.get("/metrics").text
    assert "charter_reload_failures_total 1" in text and "charter_reload_error 1" in text
    _touch(policy_file / "policy.charter", POLICY)  # fixed again (same revision as before)
    runtime.check_files()
    assert http.get("/readyz").json()["reload_error"] is None


def test_the_watcher_thread_reloads(policy_file: Path, tmp_path: Path) -> None:
    import charter
    from charter.server import create_app
    from charter.state.memory import MemoryStore

    from .conftest import token_set

    rt = Runtime(charter.load(policy_file), MemoryStore(), None, policy_path=str(policy_file), poll_s=0.1)
    with TestClient(create_app(rt, token_set())):
        old = rt.engine.policy.revision
        _touch(policy_file / "policy.charter", POLICY + "\ntool t2 { }\n")
        deadline = time.time() + 5
        while rt.engine.policy.revision == old and time.time() < deadline:
            time.sleep(0.05)
        assert rt.engine.policy.revision != old, "the watcher did not reload within 5 s"
