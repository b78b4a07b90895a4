"""A real `charter serve` process: the Python client over keep-alive, SIGHUP reload, fail closed."""

from __future__ import annotations

import time

import pytest

from charter import Decision, Outcome
from charter.client import Client, SidecarError, TransportError

from .conftest import POLICY, secret, write_policy
from .procs import Serve, free_port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> object:
    tmp = tmp_path_factory.mktemp("serve")
    policy = write_policy(tmp / "policy")
    s = Serve(policy, "memory://", tmp, "--poll", "0", "--trace", str(tmp / "trace.db"))
    try:
        s.wait_ready()
        s.policy = policy  # type: ignore[attr-defined]
        yield s
    finally:
        s.stop()


def test_client_has_the_engines_methods(served: Serve) -> None:
    orch = Client(served.url, secret("orch"))
    d = orch.decide({"actor": {"id": "c1"}, "action": {"target": "search"}})
    assert isinstance(d, Decision) and d.outcome is Outcome.ALLOW and d.allowed
    assert d.to_dict()["id"] == d.id and d.rules[0].id == "search"
    paid = orch.decide(
        {
            "actor": {"id": "c1"},
            "action": {"target": "pay"},
            "context": {"workflow": "cw"},
            "cost": {"USD": 3},
        }
    )
    st = orch.settle(paid.id, actual_cost=2.5)
    assert st.committed and st.boundaries[0].used == 2.5
    big = orch.decide({"actor": {"id": "c1"}, "action": {"target": "big"}})
    assert big.outcome is Outcome.REQUIRE_APPROVAL
    aid = big.obligations["approval_id"]
    assert Client(served.url, secret("alice")).approvals.approve(aid, note="fine")["status"] == "approved"
    assert [a["id"] for a in orch.approvals.list("approved")] == [aid]
    ok = orch.decide({"actor": {"id": "c1"}, "action": {"target": "big"}, "approval": aid})
    assert ok.outcome is Outcome.ALLOW
    assert any("allowed" in ln for ln in orch.explain(ok.id)["explanation"])
    ops = Client(served.url, secret("ops"))
    ops.stops.stop("agent", "c9", reason="test")
    assert orch.decide({"actor": {"id": "c9"}, "action": {"target": "search"}}).outcome is Outcome.HALT
    assert [s.value for s in ops.stops.list()] == ["c9"]
    for _ in range(200):  # one kept-alive connection
        orch.decide({"actor": {"id": "c1"}, "action": {"target": "search"}})


def test_client_errors_are_clear(served: Serve) -> None:
    with pytest.raises(SidecarError) as e:
        Client(served.url, "wrong-token-wrong-token").decide(
            {"actor": {"id": "a"}, "action": {"target": "x"}}
        )
    assert e.value.status == 401
    with pytest.raises(SidecarError) as e:
        Client(served.url, secret("orch")).decide({"actor": {"id": "a"}})
    assert e.value.status == 422 and e.value.field == "action"
    with pytest.raises(SidecarError) as e:
        Client(served.url, secret("alice")).decide({"actor": {"id": "a"}, "action": {"target": "search"}})
    assert e.value.status == 403
    assert "orch" not in repr(Client(served.url, secret("orch")))


def test_transport_errors_fail_closed() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TransportError):
        Client(dead, "t" * 20, timeout=0.5).decide({"actor": {"id": "a"}, "action": {"target": "x"}})
    d = Client(dead, "t" * 20, timeout=0.5, on_transport_error="deny").decide(
        {"actor": {"id": "a"}, "action": {"target": "x"}}
    )
    assert d.outcome is Outcome.DENY and d.failures[0].where == "sidecar"


def test_sighup_reloads(served: Serve) -> None:
    orch = Client(served.url, secret("orch"))
    old = orch.ready()["revision"]
    (served.policy / "policy.charter").write_text(  # type: ignore[attr-defined]
        POLICY + "\ntool hup { }\npermit hup { action call hup }\n", "utf-8"
    )
    served.signal()
    deadline = time.time() + 10
    while orch.ready()["revision"] == old and time.time() < deadline:
        time.sleep(0.05)
    d = orch.decide({"actor": {"id": "a"}, "action": {"target": "hup"}})
    assert d.outcome is Outcome.ALLOW and d.revision != old
