"""The inbox in a real browser: sign-in, quorum of two people in two contexts on two replicas, live
updates, separation of duties, denial, escalation answers, stops with two-person resume, the run
timeline, wrong roles, CSRF and hostile arguments (docs/humans.md; issue 19)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser.harness import Browser, Deployment, browser_missing, shoot, sign_in, token

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))

#: the approval answered in one browser shows in the other within this (issue 19's bound)
LIVE_BOUND_S = 1.0


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shots")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("inbox"), humans={"inbox": {"session_hours": 1}})
    yield d
    d.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def big_payment(d: Deployment, run: str, amount: float = 12_500.0, **extra: Any) -> str:
    got = d.decide(
        "payments.transfer",
        args={"amount": amount, "payee": "ACME GmbH"},
        context={"workflow": "invoices", "run": run},
        cost={"USD": amount},
        **extra,
    )
    assert got["outcome"] == "require_approval", got
    return str(got["obligations"]["approval_id"])


def csrf(page: Any) -> str:
    return str(page.locator('input[name="csrf"]').first.get_attribute("value"))


def unlabelled(page: Any) -> list[str]:
    """Visible form fields with no label (accessibility: every field must be named)."""
    return list(
        page.evaluate(
            """() => Array.from(document.querySelectorAll('input, select, textarea'))
              .filter(e => e.type !== 'hidden')
              .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
              .map(e => e.outerHTML)"""
        )
    )


def test_sign_in_with_the_keyboard_and_sign_out(
    deployment: Deployment, browser: Browser, shots: Path
) -> None:
    base = deployment.replicas[0].url
    ctx = browser.context()
    page = ctx.new_page()
    page.goto(f"{base}/ui/approvals")
    assert page.url.endswith("/ui/login")  # not signed in: the sign-in page
    shoot(page, "inbox-sign-in.png", shots)
    page.get_by_label("Your token").fill("not-a-token-at-all-0000")
    page.keyboard.press("Enter")
    assert page.get_by_role("alert").inner_text().replace("\n", " ") == "Unknown token."
    sign_in(page, base, token("lena"))
    assert page.get_by_role("heading", level=1).inner_text().replace("\n", " ") == "Approvals"
    assert "Signed in as lena" in page.locator(".who").inner_text().replace("\n", " ")
    cookie = next(c for c in ctx.cookies() if c["name"] == "charter_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert unlabelled(page) == []
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/ui/login"))
    assert "You are signed out." in page.content()
    # the old cookie is dead on every replica (the sign-out is in the store)
    other = browser.context()
    other.add_cookies([{**cookie, "domain": "127.0.0.1", "path": "/ui"}])
    p2 = other.new_page()
    p2.goto(f"{deployment.replicas[1].url}/ui/approvals")
    assert p2.url.endswith("/ui/login")
    ctx.close()
    other.close()


def test_quorum_of_two_by_two_people_live_across_replicas(
    deployment: Deployment, browser: Browser, shots: Path
) -> None:
    deployment.decide(
        "payments.verify-payee",
        args={"payee": "ACME GmbH"},
        context={"workflow": "invoices", "run": "run-42"},
    )
    deposit = deployment.decide(
        "payments.transfer",
        args={"amount": 800.0, "payee": "ACME GmbH"},
        context={"workflow": "invoices", "run": "run-42"},
        cost={"USD": 800.0},
    )
    assert deposit["outcome"] == "allow"
    aid = big_payment(deployment, "run-42")
    lena = browser.person("lena", deployment.replicas[0].url)
    marco = browser.person("marco", deployment.replicas[1].url)
    lena.goto(f"{deployment.replicas[0].url}/ui/approvals")
    assert lena.get_by_role("link", name=aid).is_visible()
    shoot(lena, "inbox-approvals.png", shots)
    lena.get_by_role("link", name=aid).click()
    marco.goto(f"{deployment.replicas[1].url}/ui/approvals/{aid}")
    # the exact action, the rule and its reason, the run so far, quorum, separation of duties
    text = lena.locator("main").inner_text().replace("\n", " ")
    assert '"amount": 12500.0' in text and '"payee": "ACME GmbH"' in text
    assert "Payments above 10,000 USD need 2 approvals from treasury." in text
    assert "payments.verify-payee" in text  # earlier in this run, from the trace
    assert "Budget run-spend (run=run-42): 0 → 800 of 100,000 USD" in text  # as the run last saw it
    assert "0 of 2 approvals" in text and "payments-agent" in lena.locator(".sod").inner_text().replace(
        "\n", " "
    )
    assert unlabelled(lena) == []
    marco.locator("body[data-connected]").wait_for(state="attached", timeout=5000)

    lena.get_by_label("Note (optional)").fill("Invoice 2026-114 checked against the contract.")
    lena.get_by_role("button", name="Approve").click()
    lena.wait_for_url(re.compile(r"done=approve"))
    t0 = time.perf_counter()
    marco.locator('[data-live="quorum"]', has_text="1 of 2").wait_for(timeout=5000)
    live_s = time.perf_counter() - t0
    print(f"\nlive update across replicas: {live_s * 1000:.0f} ms")
    assert live_s <= LIVE_BOUND_S
    quorum = marco.locator('[data-live="quorum"]').inner_text().replace("\n", " ")
    assert "lena" in quorum and "through the inbox" in quorum
    shoot(marco, "inbox-approval.png", shots)

    # lena cannot approve twice
    resp = lena.request.post(
        f"{deployment.replicas[0].url}/ui/approvals/{aid}/approve", form={"csrf": csrf(lena), "note": ""}
    )
    assert resp.status == 409 and "counts once" in resp.text()

    marco.get_by_role("button", name="Approve").click()
    marco.wait_for_url(re.compile(r"done=approve"))
    lena.locator('[data-live="quorum"] .badge-approved').wait_for(timeout=5000)
    redeemed = deployment.decide(
        "payments.transfer",
        args={"amount": 12_500.0, "payee": "ACME GmbH"},
        context={"workflow": "invoices", "run": "run-42"},
        cost={"USD": 12_500.0},
        approval=aid,
    )
    assert redeemed["outcome"] == "allow"
    # the trace names both people and the channel
    lena.goto(f"{deployment.replicas[0].url}/ui/decisions/{redeemed['id']}")
    explained = lena.locator("main").inner_text().replace("\n", " ")
    assert "lena, through the inbox, approved it" in explained
    assert "marco, through the inbox, approved it" in explained
    lena.context.close()
    marco.context.close()


def test_self_approval_is_refused(deployment: Deployment, browser: Browser) -> None:
    aid = big_payment(deployment, "run-self", human="lena")  # lena launched this agent
    lena = browser.person("lena", deployment.replicas[0].url)
    lena.goto(f"{deployment.replicas[0].url}/ui/approvals/{aid}")
    answer = lena.locator('[data-live="answer"]')
    assert "separation of duties: lena asked for this action" in answer.inner_text().replace("\n", " ")
    assert answer.get_by_role("button", name="Approve").count() == 0
    resp = lena.request.post(
        f"{deployment.replicas[0].url}/ui/approvals/{aid}/approve", form={"csrf": csrf(lena), "note": "mine"}
    )
    assert resp.status == 403 and "separation of duties" in resp.text()
    assert deployment.orch.approvals.get(aid)["status"] == "pending"
    lena.context.close()


def test_deny_with_a_note(deployment: Deployment, browser: Browser) -> None:
    aid = big_payment(deployment, "run-deny", amount=48_000.0)
    marco = browser.person("marco", deployment.replicas[1].url)
    marco.goto(f"{deployment.replicas[1].url}/ui/approvals/{aid}")
    marco.get_by_label("Note (optional)").fill("Wrong account number.")
    marco.get_by_role("button", name="Deny").click()
    marco.wait_for_url(re.compile(r"done=deny"))
    assert "Your denial is recorded." in marco.get_by_role("status").first.inner_text().replace("\n", " ")
    doc = deployment.orch.approvals.get(aid)
    assert doc["status"] == "denied" and doc["denials"][0]["via"] == "inbox"
    assert doc["denials"][0]["note"] == "Wrong account number."
    marco.context.close()


def test_escalation_answer(deployment: Deployment, browser: Browser, shots: Path) -> None:
    got = deployment.decide(
        "payments.transfer",
        args={"amount": 900.0, "payee": "Nordwind AB"},
        context={"workflow": "invoices", "run": "run-esc"},
        cost={"USD": 900.0},
        signals=[{"source": "compliance", "kind": "compliance.regulation-conflict", "score": 0.4}],
    )
    assert got["outcome"] == "escalate"
    eid = got["obligations"]["escalation"]["id"]
    lena = browser.person("lena", deployment.replicas[0].url)
    lena.goto(f"{deployment.replicas[0].url}/ui/escalations/{eid}")
    assert "you are not in the chain" in lena.locator('[data-live="answer"]').inner_text().replace("\n", " ")
    lena.context.close()
    chloe = browser.person("chloe", deployment.replicas[1].url)
    chloe.goto(f"{deployment.replicas[1].url}/ui/escalations")
    chloe.get_by_role("link", name=eid).click()
    chain = chloe.locator('[data-live="chain"]').inner_text().replace("\n", " ")
    assert (
        "compliance — for 30 min" in chain and "(answering now)" in chain and "risk-heads — for 2 h" in chain
    )
    assert "If nobody answers: deny." in chain
    assert "compliance.regulation-conflict" in chloe.locator("main").inner_text().replace("\n", " ")
    shoot(chloe, "inbox-escalation.png", shots)
    chloe.get_by_label("Note (optional)").fill("The new rule does not apply to Sweden.")
    chloe.get_by_role("button", name="Allow").click()
    chloe.wait_for_url(re.compile(r"done=allow"))
    assert deployment.orch.escalations.get(eid)["status"] == "allowed"
    chloe.context.close()


def test_stop_and_two_person_resume(deployment: Deployment, browser: Browser, shots: Path) -> None:
    olga = browser.person("olga", deployment.replicas[0].url)
    peter = browser.person("peter", deployment.replicas[1].url)
    peter.goto(f"{deployment.replicas[1].url}/ui/stops")
    peter.locator("body[data-connected]").wait_for(state="attached", timeout=5000)
    olga.goto(f"{deployment.replicas[0].url}/ui/stops")
    olga.get_by_label("Scope", exact=True).select_option("agent")
    olga.get_by_label("Which one").fill("payments-agent")
    olga.get_by_label("Reason", exact=True).fill("Runaway payment loop in run-77.")
    olga.get_by_role("button", name="Stop").click()
    olga.wait_for_url(re.compile(r"done=stop"))
    peter.locator('[data-live="stops"]', has_text="payments-agent").wait_for(timeout=5000)  # live
    assert "olga" in peter.locator('[data-live="stops"]').inner_text().replace("\n", " ")
    halted = deployment.decide("payments.verify-payee", args={"payee": "x"}, context={"run": "run-77"})
    assert halted["outcome"] == "halt"

    olga.get_by_role("button", name="Ask to resume").click()
    olga.wait_for_url(re.compile(r"done=resume"))
    assert "1 of 2" in olga.locator('[data-live="stops"]').inner_text().replace("\n", " ")
    shoot(olga, "inbox-stops.png", shots)
    olga.get_by_role("button", name="Ask to resume").click()  # the same person again: refused
    assert "olga already asked to resume" in olga.get_by_role("alert").inner_text().replace("\n", " ")
    assert deployment.decide("payments.verify-payee", args={"payee": "x"})["outcome"] == "halt"
    peter.locator('[data-live="stops"]', has_text="1 of 2").wait_for(timeout=5000)
    peter.get_by_role("button", name="Ask to resume").click()
    peter.wait_for_url(re.compile(r"done=resume"))
    assert "Nothing is stopped." in peter.locator('[data-live="stops"]').inner_text().replace("\n", " ")
    assert deployment.decide("payments.verify-payee", args={"payee": "x"})["outcome"] == "allow"
    log = " ".join(peter.locator('[data-live="log"]').inner_text().split())
    assert "resumed agent payments-agent by olga through the inbox" in log
    olga.context.close()
    peter.context.close()


def test_run_timeline_explains_each_decision(deployment: Deployment, browser: Browser, shots: Path) -> None:
    run = "run-timeline"
    deployment.decide("web.search", agent="research-agent", context={"run": run})
    deployment.decide("payments.verify-payee", args={"payee": "Kite Ltd"}, context={"run": run})
    deployment.decide(
        "payments.transfer",
        args={"amount": 300.0, "payee": "Kite Ltd"},
        context={"run": run},
        cost={"USD": 300.0},
    )
    big_payment(deployment, run, amount=20_000.0)
    olga = browser.person("olga", deployment.replicas[1].url)  # operators read decisions too
    olga.goto(f"{deployment.replicas[1].url}/ui/runs")
    olga.get_by_label("Run id").fill(run)
    olga.get_by_role("button", name="Show the timeline").click()
    olga.wait_for_url(re.compile(r"/ui/runs/run-timeline"))
    events = olga.locator("li.event")
    assert events.count() == 4
    events.nth(3).locator("summary").click()
    text = events.nth(3).inner_text().replace("\n", " ")
    assert "needed human approval" in text and "It needed 2 approvals from treasury" in text
    events.nth(2).locator("summary").click()
    assert "Budget run-spend" in events.nth(2).inner_text().replace("\n", " ")
    shoot(olga, "inbox-timeline.png", shots)
    olga.context.close()


def test_wrong_role_sees_no_button_and_a_forged_post_is_403(deployment: Deployment, browser: Browser) -> None:
    aid = big_payment(deployment, "run-roles")
    orch = browser.person("orch", deployment.replicas[0].url)
    orch.goto(f"{deployment.replicas[0].url}/ui/approvals/{aid}")
    answer = orch.locator('[data-live="answer"]')
    assert "may read approval requests but not answer them" in answer.inner_text().replace("\n", " ")
    assert orch.get_by_role("button", name="Approve").count() == 0
    assert orch.get_by_role("button", name="Deny").count() == 0
    forged = orch.request.post(
        f"{deployment.replicas[0].url}/ui/approvals/{aid}/approve",
        form={"csrf": csrf(orch), "note": "forged"},
    )
    assert forged.status == 403 and "may not answer" in forged.text()
    assert deployment.orch.approvals.get(aid)["approvals"] == []
    olga = browser.person("olga", deployment.replicas[0].url)
    assert olga.goto(f"{deployment.replicas[0].url}/ui/approvals").status == 403
    lena = browser.person("lena", deployment.replicas[0].url)
    assert lena.goto(f"{deployment.replicas[0].url}/ui/stops").status == 403
    forged = lena.request.post(
        f"{deployment.replicas[0].url}/ui/stops",
        form={"csrf": csrf(lena), "scope": "global", "value": "*", "reason": "x"},
    )
    assert forged.status == 403 and deployment.orch.stops.list() == []
    for p in (orch, olga, lena):
        p.context.close()


def test_csrf_without_or_with_a_wrong_token_is_refused(deployment: Deployment, browser: Browser) -> None:
    aid = big_payment(deployment, "run-csrf")
    lena = browser.person("lena", deployment.replicas[0].url)
    lena.goto(f"{deployment.replicas[0].url}/ui/approvals/{aid}")
    url = f"{deployment.replicas[0].url}/ui/approvals/{aid}/approve"
    assert lena.request.post(url, form={"note": "no token"}).status == 403
    assert lena.request.post(url, form={"csrf": "x" * 43, "note": "wrong"}).status == 403
    other = browser.person("marco", deployment.replicas[0].url)
    other.goto(f"{deployment.replicas[0].url}/ui/approvals/{aid}")
    assert lena.request.post(url, form={"csrf": csrf(other), "note": "marco's token"}).status == 403
    cross = lena.request.post(url, form={"csrf": csrf(lena)}, headers={"Origin": "https://evil.example"})
    assert cross.status == 403
    assert deployment.orch.approvals.get(aid)["approvals"] == []
    lena.context.close()
    other.context.close()


XSS = [
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=1">',
    "'><svg onload=window.__xss=1>",
    "javascript:window.__xss=1",
    "</pre><script>window.__xss=1</script>",
    "{{7*7}}${7*7}",
]
#: a hostile run id the run id rule lets through (printable, no '/': docs/security.md)
HOSTILE_RUN = "'><img src=x onerror=window.__xss=1><script>window.__xss=2<\\script>"


def test_hostile_arguments_and_notes_are_shown_as_text(deployment: Deployment, browser: Browser) -> None:
    args = {"amount": 15_000.0, "payee": XSS[0], XSS[1]: XSS[2], "memo": " ".join(XSS)}
    got = deployment.decide(
        "payments.transfer",
        args=args,
        context={"workflow": XSS[1], "run": HOSTILE_RUN},
        cost={"USD": 15_000.0},
    )
    aid = got["obligations"]["approval_id"]
    lena = browser.person("lena", deployment.replicas[0].url)
    for path in ("/ui/approvals", f"/ui/approvals/{aid}"):
        lena.goto(deployment.replicas[0].url + path)
        assert lena.evaluate("window.__xss") is None
        assert lena.locator("script").count() == 1  # only inbox.js
        assert lena.locator("img, svg").count() == 0
    text = lena.locator("main").inner_text().replace("\n", " ")
    assert XSS[0] in text and "javascript:window.__xss=1" in text
    lena.get_by_label("Note (optional)").fill(XSS[1])
    lena.get_by_role("button", name="Approve").click()
    lena.wait_for_url(re.compile(r"done=approve"))
    assert lena.evaluate("window.__xss") is None and lena.locator("img, svg").count() == 0
    lena.get_by_role("link", name=HOSTILE_RUN).click()  # the run link, hostile run id and all
    assert lena.evaluate("window.__xss") is None
    lena.context.close()
