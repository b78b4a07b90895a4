"""`charter.client.AsyncClient` against a real `charter serve`: the sync client's methods, awaited,
with the same answers and the same fail-closed rules."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from charter import Decision, Outcome
from charter.client import AsyncClient, Client, SidecarError, TransportError

from .conftest import secret, write_policy
from .procs import Serve, free_port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> object:
    tmp = tmp_path_factory.mktemp("serve-async")
    s = Serve(write_policy(tmp / "policy"), "memory://", tmp, "--poll", "0", "--trace", str(tmp / "trace.db"))
    try:
        s.wait_ready()
        yield s
    finally:
        s.stop()


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


CASES = [
    {"actor": {"id": "c1"}, "action": {"target": "search"}},
    {"actor": {"id": "c1"}, "action": {"target": "nothing-permits-this"}},
    {"actor": {"id": "c1"}, "action": {"target": "pay"}, "context": {"workflow": "aw"}, "cost": {"USD": 3}},
    {"actor": {"id": "c1"}, "action": {"target": "big"}},
]


def _shape(d: Decision) -> tuple[Any, ...]:
    return (d.outcome, [h.id for h in d.rules], d.default_deny, sorted(d.obligations))


def test_async_client_mirrors_the_sync_client(served: Serve) -> None:
    sync = Client(served.url, secret("orch"))

    async def main() -> None:
        async with AsyncClient(served.url, secret("orch")) as orch:
            for req in CASES:
                got = await orch.decide(req)
                assert isinstance(got, Decision)
                assert _shape(got) == _shape(sync.decide(req))
            paid = await orch.decide(CASES[2])
            st = await orch.settle(paid.id, actual_cost=2.5)
            assert st.committed
            big = await orch.decide(CASES[3])
            aid = big.obligations["approval_id"]
            async with AsyncClient(served.url, secret("alice")) as alice:
                assert (await alice.approvals.approve(aid, note="fine"))["status"] == "approved"
            assert aid in [a["id"] for a in await orch.approvals.list("approved")]
            ok = await orch.decide({**CASES[3], "approval": aid})
            assert ok.outcome is Outcome.ALLOW
            assert any("allowed" in ln for ln in (await orch.explain(ok.id))["explanation"])
            async with AsyncClient(served.url, secret("ops")) as ops:
                await ops.stops.stop("agent", "c8", reason="test")
                assert "c8" in [s.value for s in await ops.stops.list()]
            assert (
                await orch.decide({"actor": {"id": "c8"}, "action": {"target": "search"}})
            ).outcome is Outcome.HALT
            assert (await orch.ready()) == sync.ready()
            # many concurrent decisions on one client: none blocks the loop, all answered
            many = await asyncio.gather(*(orch.decide(CASES[0]) for _ in range(50)))
            assert {d.outcome for d in many} == {Outcome.ALLOW}

    _run(main())


def test_async_client_errors_and_fail_closed(served: Serve) -> None:
    async def main() -> None:
        with pytest.raises(SidecarError) as e:
            await AsyncClient(served.url, "wrong-token-wrong-token").decide(CASES[0])
        assert e.value.status == 401
        with pytest.raises(SidecarError) as e:
            await AsyncClient(served.url, secret("orch")).decide({"actor": {"id": "a"}})
        assert e.value.status == 422 and e.value.field == "action"
        assert "orch" not in repr(AsyncClient(served.url, secret("orch")))
        dead = f"http://127.0.0.1:{free_port()}"
        with pytest.raises(TransportError):
            await AsyncClient(dead, "t" * 20, timeout=0.5).decide(CASES[0])
        d = await AsyncClient(dead, "t" * 20, timeout=0.5, on_transport_error="deny").decide(CASES[0])
        assert d.outcome is Outcome.DENY and d.failures[0].where == "sidecar"
        with pytest.raises(ValueError):
            AsyncClient("ftp://x")

    _run(main())
