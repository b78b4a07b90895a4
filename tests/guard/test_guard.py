"""The tool guard: decide -> run -> settle, typed exceptions, approval handles, async, Engine and Client."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import charter
from charter.guard import ApprovalRequired, Denied, Escalated, Guard, Halted, guard, guarded

ROOT = Path(__file__).resolve().parents[2]
PAY = {"amount": 12000.0, "payee": "globex", "currency": "USD", "new_payee": False}


@pytest.fixture(scope="module")
def policy() -> Any:
    return charter.load(ROOT / "policies")


@pytest.fixture
def engine(policy: Any) -> charter.Engine:
    return charter.Engine(policy)


def test_decorator_allows_and_settles_the_actual_cost(engine: charter.Engine) -> None:
    calls: list[str] = []

    @guard(
        engine,
        "research-agent",
        target="web.search",
        estimate={"USD": 20.0},
        context={"workflow": "wf-1", "run": "r1"},
        cost=lambda r: {"USD": r["usd"]},
    )
    def web_search(q: str) -> dict[str, Any]:
        calls.append(q)
        return {"hits": 3, "usd": 18.0}

    assert web_search("globex") == {"hits": 3, "usd": 18.0}
    # 18 settled (not 20): a further 32 fits the 50 USD daily budget, 33 would not
    # (another workflow: the policy's spend-velocity tripwire counts estimates per workflow)
    g = Guard(engine, "research-agent", context={"workflow": "wf-2", "run": "r2"})
    with pytest.raises(Denied) as exc, g.action("web.search", {"q": "x"}, estimate={"USD": 33.0}):
        pass
    assert [h.id for h in exc.value.decision.rules] == ["agent-daily-paid-apis"]
    with g.action("web.search", {"q": "y"}, estimate={"USD": 32.0}) as act:
        act.cost = {"USD": 32.0}
    assert act.settlement is not None and act.settlement.committed
    with pytest.raises(Denied):
        web_search("again")
    assert calls == ["globex"]


def test_denied_carries_the_decision_and_the_body_never_runs(engine: charter.Engine) -> None:
    ran = []

    @Guard(engine, "research-agent")(target="kb.write")
    def kb_write(page: str) -> None:
        ran.append(page)

    with pytest.raises(Denied) as exc:
        kb_write("p")
    assert not ran
    assert exc.value.decision is not None and exc.value.decision.outcome is charter.Outcome.DENY
    assert "never write" in str(exc.value)


def test_failure_in_the_block_settles_as_failure(engine: charter.Engine) -> None:
    g = Guard(engine, "payments-agent", context={"run": "r-fail"})
    with g.action("payments.verify-payee", {"payee": "globex"}):
        pass
    with pytest.raises(RuntimeError), g.action("payments.transfer", {**PAY, "amount": 100.0}) as act:
        raise RuntimeError("bank down")
    assert act.settlement is not None and act.settlement.result == "failure"
    # the policy halts the payments agent after a failed payment (an 'on result' check)
    with pytest.raises(Halted), g.action("payments.verify-payee", {"payee": "globex"}):
        pass


def test_approval_required_wait_and_resume(engine: charter.Engine) -> None:
    g = Guard(engine, "payments-agent", context={"run": "r-pay"})
    with g.action("payments.verify-payee", {"payee": "globex"}):
        pass
    paid: list[float] = []

    @g(target="payments.transfer")
    def transfer(amount: float, payee: str, currency: str, new_payee: bool) -> str:
        paid.append(amount)
        return "tx-1"

    with pytest.raises(ApprovalRequired) as exc:
        transfer(**PAY)
    handle = exc.value.approval
    assert handle.id.startswith("ap-") and handle.status() == "pending" and not paid
    with pytest.raises(TimeoutError):
        handle.wait(timeout=0.05, poll=0.01)

    def approve() -> None:
        time.sleep(0.05)
        engine.approvals.approve(handle.id, "alice", "ok")
        engine.approvals.approve(handle.id, "bob", "ok")

    t = threading.Thread(target=approve)
    t.start()
    assert handle.wait(timeout=5, poll=0.01) is handle
    t.join()
    assert handle.resume() == "tx-1"
    assert paid == [12000.0]
    with pytest.raises(Denied, match="already used"):
        handle.resume()
    with pytest.raises(Denied, match="already used"):
        handle.wait(timeout=1, poll=0.01)


def test_a_denied_approval_ends_the_wait(engine: charter.Engine) -> None:
    g = Guard(engine, "payments-agent", context={"run": "r-deny"})
    with g.action("payments.verify-payee", {"payee": "globex"}):
        pass
    with pytest.raises(ApprovalRequired) as exc, g.action("payments.transfer", PAY):
        pass
    engine.approvals.deny(exc.value.approval_id, "carol", "unknown invoice")
    with pytest.raises(Denied, match="was denied"):
        exc.value.approval.wait(timeout=1, poll=0.01)


def test_context_manager_resume_gives_a_guard_with_the_approval(engine: charter.Engine) -> None:
    g = Guard(engine, "payments-agent", context={"run": "r-ctx"})
    with g.action("payments.verify-payee", {"payee": "globex"}):
        pass
    with pytest.raises(ApprovalRequired) as exc, g.action("payments.transfer", PAY):
        pass
    for who in ("alice", "bob"):
        engine.approvals.approve(exc.value.approval_id, who)
    with exc.value.approval.wait(timeout=1, poll=0.01).resume() as act:
        assert act.decision is not None and act.decision.outcome is charter.Outcome.ALLOW


def test_halted_and_escalated(engine: charter.Engine) -> None:
    engine.stops.stop("agent", "risk-agent", "incident", "olga")
    with pytest.raises(Halted) as h, guarded(engine, "risk-agent", "kb.read"):
        pass
    assert h.value.decision is not None and h.value.decision.rules[0].id == "stop:agent:risk-agent"
    sig = [{"source": "compliance-agent", "kind": "compliance.regulation-conflict"}]
    with (
        pytest.raises(Escalated) as e,
        guarded(engine, "credit-agent", "credit.approve", {"customer": "c1", "amount": 10.0}, signals=sig),
    ):
        pass
    assert e.value.escalation_id and e.value.escalation_id.startswith("es-")


def test_async_decorator_and_async_with(engine: charter.Engine) -> None:
    g = Guard(engine, "research-agent", context={"workflow": "wf-a", "run": "r-a"})

    @g(target="web.search", estimate={"USD": 20.0}, cost=lambda r: 25.0)
    async def search(q: str) -> str:
        await asyncio.sleep(0)
        return q.upper()

    async def main() -> None:
        assert await search("a") == "A"
        assert await search("b") == "B"  # 25 + 20 reserved <= 50
        with pytest.raises(Denied):  # 50 spent: nothing fits any more
            await search("c")
        with pytest.raises(Denied):
            async with g.action("kb.write", {"page": "p"}):
                pass
        async with g.action("kb.read", {"q": "x"}) as act:
            assert act.decision is not None

    asyncio.run(main())


def test_async_approval_wait_and_resume(engine: charter.Engine) -> None:
    g = Guard(engine, "payments-agent", context={"run": "r-async"})
    with g.action("payments.verify-payee", {"payee": "globex"}):
        pass

    @g(target="payments.transfer")
    async def transfer(amount: float, payee: str, currency: str, new_payee: bool) -> str:
        return f"paid {amount:g}"

    async def main() -> str:
        try:
            await transfer(**PAY)
        except ApprovalRequired as exc:
            for who in ("alice", "bob"):
                engine.approvals.approve(exc.approval_id, who)
            await exc.approval.wait_async(timeout=1, poll=0.01)
            return str(await exc.approval.resume_async())
        raise AssertionError("expected ApprovalRequired")

    assert asyncio.run(main()) == "paid 12000"


def test_works_with_the_sidecar_client(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn", reason="the sidecar needs the server extra (uvicorn)")
    from tests.server.conftest import secret, write_policy
    from tests.server.procs import Serve

    from charter.client import Client

    srv = Serve(write_policy(tmp_path / "policy"), "memory://", tmp_path)
    try:
        srv.wait_ready()
        client = Client(srv.url, secret("orch"))
        g = Guard(client, "a1", context={"workflow": "wf-c"})

        @g(target="pay", estimate={"USD": 6.0}, cost=lambda r: {"USD": 4.0})
        def pay() -> str:
            return "ok"

        assert pay() == "ok"
        assert pay() == "ok"  # 4 + 6 <= 10
        with pytest.raises(Denied):  # 8 + 6 > 10
            pay()

        @g(target="big")
        def big() -> str:
            return "big done"

        with pytest.raises(ApprovalRequired) as exc:
            big()
        Client(srv.url, secret("alice")).approvals.approve(exc.value.approval_id)
        assert exc.value.approval.wait(timeout=5, poll=0.05).resume() == "big done"
    finally:
        srv.stop()
