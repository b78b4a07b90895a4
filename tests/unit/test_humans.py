"""Human gates, escalations and emergency stops: the lifecycle, with a controllable clock."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import charter
from charter import Outcome
from charter.approvals import HumanError
from charter.state import open_store

POLICY = """
units USD
roles payments, ops
agent pay { role payments }
agent pay-helper { role payments }
group treasury { members alice, bob, carol, pay }
group leads { members grace }
group heads { members heidi }
group operators { members olga, peter, quinn }
tool transfer { arg amount: double }
tool verify {}
signal risk.anomaly { from risk }
escalation chain {
  to leads for 30m
  to heads for 2h
  finally deny
}
stops {
  operators operators
  resume requires 2
}
permit pay-transfer { actor role payments  action call transfer, verify  reason "pay" }
require approval big {
  action call transfer
  when args.amount > 10000.0
  approvers treasury
  quorum 2
  expires after 4h
  on timeout deny
  reason "Two treasury approvals above 10,000."
}
escalate risky {
  action call transfer
  signal risk.anomaly
  to chain
  reason "Risk anomalies go up the chain."
}
"""


class Clock:
    """A clock tests move by hand."""

    def __init__(self, t: float = 1_790_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def big(amount: float = 12000.0, approval: str | None = None, actor: str = "pay") -> dict[str, Any]:
    r: dict[str, Any] = {
        "actor": {"id": actor},
        "action": {"target": "transfer", "args": {"amount": amount}},
        "context": {"workflow": "w", "run": "r"},
    }
    if approval:
        r["approval"] = approval
    return r


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def engine(clock: Clock) -> charter.Engine:
    return charter.Engine(charter.loads(POLICY), clock=clock)


def test_approval_flow_allows_once(engine: charter.Engine) -> None:
    d = engine.decide(big())
    assert d.outcome is Outcome.REQUIRE_APPROVAL
    aid = d.obligations["approval_id"]
    assert engine.approvals.get(aid)["status"] == "pending"
    # still pending: resubmitting keeps waiting on the same request
    again = engine.decide(big(approval=aid))
    assert again.outcome is Outcome.REQUIRE_APPROVAL and again.obligations["approval_id"] == aid
    engine.approvals.approve(aid, "alice", "ok")
    assert engine.approvals.get(aid)["status"] == "pending"
    engine.approvals.approve(aid, "bob", "fine")
    assert engine.approvals.get(aid)["status"] == "approved"
    d2 = engine.decide(big(approval=aid))
    assert d2.outcome is Outcome.ALLOW and d2.rules[0].id == f"approval:{aid}"
    assert "alice, bob" in d2.rules[0].reason
    replay = engine.decide(big(approval=aid))
    assert replay.outcome is Outcome.DENY and replay.rules[0].reason == f"approval {aid} was already used"


def test_self_approval_and_same_approver_twice(engine: charter.Engine) -> None:
    aid = engine.decide(big()).obligations["approval_id"]
    with pytest.raises(HumanError, match="separation of duties: pay asked for this action"):
        engine.approvals.approve(aid, "pay")
    with pytest.raises(HumanError, match="mallory is not a member of treasury"):
        engine.approvals.approve(aid, "mallory")
    engine.approvals.approve(aid, "alice")
    with pytest.raises(HumanError, match=r"alice has already approved .*; an approver counts once"):
        engine.approvals.approve(aid, "alice")


def test_delegation_chain_and_launching_human_cannot_approve(engine: charter.Engine) -> None:
    r = big()
    r["actor"]["chain"] = ["carol"]
    r["actor"]["human"] = "bob"
    aid = engine.decide(r).obligations["approval_id"]
    for who in ("carol", "bob"):
        with pytest.raises(HumanError, match="separation of duties"):
            engine.approvals.approve(aid, who)


def test_approval_for_another_action_is_refused(engine: charter.Engine) -> None:
    aid = engine.decide(big(12000.0)).obligations["approval_id"]
    engine.approvals.approve(aid, "alice")
    engine.approvals.approve(aid, "bob")
    other = engine.decide(big(50000.0, approval=aid))
    assert other.outcome is Outcome.DENY
    assert other.rules[0].reason == f"approval {aid} was given for a different action"
    stolen = engine.decide(big(12000.0, approval=aid, actor="pay-helper"))
    assert stolen.outcome is Outcome.DENY
    assert engine.decide(big(12000.0, approval=aid)).outcome is Outcome.ALLOW


def test_expiry_takes_timeout_outcome(engine: charter.Engine, clock: Clock) -> None:
    aid = engine.decide(big()).obligations["approval_id"]
    engine.approvals.approve(aid, "alice")
    clock.t += 4 * 3600 + 1
    doc = engine.approvals.get(aid)
    assert (doc["status"], doc["outcome"]) == ("expired", "deny")
    with pytest.raises(HumanError, match="expired"):
        engine.approvals.approve(aid, "bob")
    d = engine.decide(big(approval=aid))
    assert d.outcome is Outcome.DENY and "expired" in d.rules[0].reason


def test_denied_approval(engine: charter.Engine) -> None:
    aid = engine.decide(big()).obligations["approval_id"]
    engine.approvals.deny(aid, "carol", "not this month")
    assert engine.decide(big(approval=aid)).outcome is Outcome.DENY


def test_redeemed_action_is_checked_again(engine: charter.Engine) -> None:
    aid = engine.decide(big()).obligations["approval_id"]
    engine.approvals.approve(aid, "alice")
    engine.approvals.approve(aid, "bob")
    engine.stops.stop("agent", "pay", "investigating", "olga")
    assert engine.decide(big(approval=aid)).outcome is Outcome.HALT
    assert engine.approvals.get(aid)["status"] == "approved"  # not used up by a halted attempt


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_fifty_concurrent_redemptions_exactly_one_wins(store_kind: str, tmp_path: Path, clock: Clock) -> None:
    store = open_store("memory://" if store_kind == "memory" else f"sqlite:///{tmp_path}/s.db")
    engine = charter.Engine(charter.loads(POLICY), store=store, clock=clock)
    aid = engine.decide(big()).obligations["approval_id"]
    engine.approvals.approve(aid, "alice")
    engine.approvals.approve(aid, "bob")
    results: list[Outcome] = []
    lock = threading.Lock()
    barrier = threading.Barrier(50)

    def go() -> None:
        barrier.wait()
        out = engine.decide(big(approval=aid)).outcome
        with lock:
            results.append(out)

    threads = [threading.Thread(target=go) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(Outcome.ALLOW) == 1 and results.count(Outcome.DENY) == 49


def test_escalation_chain_answer_and_fallback(engine: charter.Engine, clock: Clock) -> None:
    sig = [{"source": "risk", "kind": "risk.anomaly", "score": 0.5}]
    r = big(100.0)
    r["signals"] = sig
    d = engine.decide(r)
    assert d.outcome is Outcome.ESCALATE
    eid = d.obligations["escalation"]["id"]
    assert engine.escalations.get(eid)["target"] == "leads"
    with pytest.raises(HumanError, match="olga is not the current target"):
        engine.escalations.answer(eid, "olga", "allow")
    clock.t += 31 * 60
    assert engine.escalations.get(eid)["target"] == "heads"
    with pytest.raises(HumanError, match="grace is not the current target"):
        engine.escalations.answer(eid, "grace", "allow")
    engine.escalations.answer(eid, "heidi", "allow", "checked")
    r["approval"] = eid
    assert engine.decide(r).outcome is Outcome.ALLOW
    assert engine.decide(r).outcome is Outcome.DENY  # used once
    # a second escalation that nobody answers takes the fallback
    r2 = big(200.0)
    r2["signals"] = sig
    eid2 = engine.decide(r2).obligations["escalation"]["id"]
    clock.t += 3 * 3600
    doc = engine.escalations.get(eid2)
    assert (doc["status"], doc["outcome"]) == ("fallback", "deny")
    r2["approval"] = eid2
    assert engine.decide(r2).outcome is Outcome.DENY


def test_two_person_resume(engine: charter.Engine) -> None:
    with pytest.raises(HumanError, match="mallory is not an operator"):
        engine.stops.stop("global", "*", "panic", "mallory")
    engine.stops.stop("workflow", "w", "runaway spend", "olga")
    assert engine.decide(big(10.0)).outcome is Outcome.HALT
    res = engine.stops.resume("workflow", "w", "olga")
    assert (res["resumed"], res["have"], res["need"]) == (False, 1, 2)
    with pytest.raises(HumanError, match="olga already asked to resume"):
        engine.stops.resume("workflow", "w", "olga")
    assert engine.decide(big(10.0)).outcome is Outcome.HALT
    res = engine.stops.resume("workflow", "w", "peter", "checked the loop")
    assert res["resumed"] and res["operators"] == ["olga", "peter"]
    assert engine.decide(big(10.0)).outcome is Outcome.ALLOW
    events = [(e["event"], e["by"]) for e in engine.stops.log()]
    assert events == [("stopped", "olga"), ("resume-requested", "olga"), ("resumed", "olga, peter")]


def test_stop_seen_by_a_second_process(tmp_path: Path) -> None:
    import multiprocessing as mp

    url = f"sqlite:///{tmp_path}/shared.db"
    engine = charter.Engine(charter.loads(POLICY), store=open_store(url))
    engine.stops.stop("agent", "pay", "test", "olga")
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        got = pool.apply(_decide_in_child, (POLICY, url))
    assert got == "halt"


def _decide_in_child(policy: str, url: str) -> str:
    engine = charter.Engine(charter.loads(policy), store=open_store(url))
    return engine.decide(big(10.0)).outcome.value


def test_notifier_is_called(clock: Clock) -> None:
    events: list[tuple[str, str]] = []

    class Collect:
        def notify(self, kind: str, event: str, record: Any) -> None:
            events.append((kind, event))

    engine = charter.Engine(charter.loads(POLICY), clock=clock, notifier=Collect())
    aid = engine.decide(big()).obligations["approval_id"]
    engine.approvals.approve(aid, "alice")
    engine.approvals.approve(aid, "bob")
    assert events == [("approval", "opened"), ("approval", "answered"), ("approval", "approved")]


def test_webhook_notifier_never_blocks_and_retries() -> None:
    import http.server
    import time

    hits: list[bytes] = []

    class H(http.server.BaseHTTPRequestHandler):
        calls = 0

        def do_POST(self) -> None:
            H.calls += 1
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if H.calls == 1:
                self.send_response(500)
                self.end_headers()
                return
            hits.append(body)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    from charter.notify.dispatch import Dispatcher, Lane, Retry
    from charter.notify.webhook import WebhookTarget

    lane = Lane(WebhookTarget(f"http://127.0.0.1:{srv.server_port}/hook", None), "hook", retry=Retry(3, 0.01))
    n = Dispatcher([lane])
    t0 = time.perf_counter()
    n.notify("approval", "opened", {"id": "ap-1"})
    assert time.perf_counter() - t0 < 0.05
    n.close()
    srv.shutdown()
    assert (lane.counters.sent, lane.counters.retried) == (1, 1) and len(hits) == 1 and b'"ap-1"' in hits[0]


def test_trace_explain_names_people_and_channels(tmp_path: Path, clock: Clock) -> None:
    from charter.approvals import Channel
    from charter.trace import TraceLog
    from charter.trace.story import story

    trace = TraceLog(tmp_path / "t.db", durable=True, clock=clock)
    engine = charter.Engine(charter.loads(POLICY), trace=trace, clock=clock)
    aid = engine.decide(big()).obligations["approval_id"]
    engine.approvals.approve(aid, "alice", "fine", via=Channel.INBOX)
    engine.approvals.approve(aid, "bob", via=Channel.ADMIN)
    d = engine.decide(big(approval=aid))
    _, lines = story(trace.path, d.id)
    assert "alice, through the inbox, approved it at" in "\n".join(lines)
    assert "bob, with direct store access (admin mode), approved it at" in "\n".join(lines)
    # the approval record itself, by its id
    rec, lines = story(trace.path, aid)
    assert rec is not None and rec["kind"] == "approval"
    assert any("approved by alice through the inbox (fine)" in x for x in lines)
    # a halt by a stop names who set it and how; the resume names both operators
    engine.stops.stop("agent", "pay", "runaway loop", "olga", via=Channel.CLI)
    halted = engine.decide(big(10.0))
    _, lines = story(trace.path, halted.id)
    assert any(
        x.startswith("The stop on agent pay was set by olga, through the command line (with a token),")
        for x in lines
    )
    engine.stops.resume("agent", "pay", "olga", via=Channel.CLI)
    engine.stops.resume("agent", "pay", "peter", "checked", via=Channel.HTTP)
    resumed = next(e for e in engine.stops.log() if e["event"] == "resumed")
    assert [(p["by"], p["via"]) for p in resumed["operators"]] == [("olga", "cli"), ("peter", "http")]
    from charter.trace.log import query

    rec = next(r for r in query(trace.path, kind="stop") if r["event"]["event"] == "resumed")
    _, lines = story(trace.path, rec["id"])
    assert "asked for by: olga through the command line (with a token)" in lines[0]
    assert "peter through the HTTP API" in lines[0]
    trace.close()


def test_granted_approval_lapses_after_its_redeem_window(engine: charter.Engine, clock: Clock) -> None:
    aid = engine.decide(big()).obligations["approval_id"]
    engine.approvals.approve(aid, "alice")
    engine.approvals.approve(aid, "bob")
    doc = engine.approvals.get(aid)
    assert doc["status"] == "approved" and doc["redeem_by"] == clock.t + 3600.0  # the default window
    clock.t += 3600.0
    d = engine.decide(big(approval=aid))
    assert d.outcome is Outcome.DENY
    assert d.rules[0].reason == f"approval {aid} was granted but not used within 1 h; ask again"
    assert engine.approvals.get(aid)["status"] == "expired"
    assert not engine.approvals.redeem(aid, "d-x")


def test_redeem_window_from_the_policy(clock: Clock) -> None:
    policy = POLICY.replace("  on timeout deny\n", "  on timeout deny\n  redeem within 15m\n")
    engine = charter.Engine(charter.loads(policy), clock=clock)
    aid = engine.decide(big()).obligations["approval_id"]
    engine.approvals.approve(aid, "alice")
    engine.approvals.approve(aid, "bob")
    clock.t += 14 * 60
    assert engine.decide(big(approval=aid)).outcome is Outcome.ALLOW
    aid2 = engine.decide(big(13000.0)).obligations["approval_id"]
    engine.approvals.approve(aid2, "alice")
    engine.approvals.approve(aid2, "bob")
    clock.t += 15 * 60
    assert engine.decide(big(13000.0, approval=aid2)).outcome is Outcome.DENY
