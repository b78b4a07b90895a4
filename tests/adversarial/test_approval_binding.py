"""Attacks on human approvals: an approval is bound to everything the decision depended on (issue 15 item 8;
docs/semantics.md §10).

Invariant attacked: an approval given for one request allows exactly that request, once. Resubmitted
with another cost, other arguments, labels, context fields, roles, attributes or signals, it is
refused (deny naming the approval); the same request with a new time, trace id or idempotency key is
allowed once. On every store and over the sidecar's real HTTP.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.adversarial.engine_side import BACKENDS, Clock, Http, engine_on, http_for, pay

import charter

BIG = 20_000.0


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[charter.Engine, Clock]]:
    policy = __import__("tests.adversarial.engine_side", fromlist=["POLICY"]).POLICY.replace(
        "limit 1000 USD per day", "limit 100000 USD per day"
    )
    yield from engine_on(request.param, tmp_path, policy)


def _approved(e: charter.Engine, req: dict[str, Any]) -> str:
    d = e.decide(req)
    assert d.outcome is charter.Outcome.REQUIRE_APPROVAL, d
    aid = str(d.obligations["approval_id"])
    e.approvals.approve(aid, "alice")
    return aid


def _with(req: dict[str, Any], aid: str) -> dict[str, Any]:
    out = copy.deepcopy(req)
    out["approval"] = aid
    return out


CHANGES: list[tuple[str, Any]] = [
    ("a smaller cost", lambda r: r.update(cost={"USD": 1.0})),
    ("no cost", lambda r: r.pop("cost")),
    ("another unit", lambda r: r.update(cost={"tokens": 1.0})),
    ("another payee", lambda r: r["action"]["args"].update(to="mallory")),
    ("another amount", lambda r: r["action"]["args"].update(amount=BIG + 1)),
    ("labels", lambda r: r["action"].update(labels={"to": ["untrusted"]})),
    ("a context field", lambda r: r.update(context={"ticket": "T-1"})),
    ("another tenant", lambda r: r.update(context={"tenant": "other"})),
    ("roles claimed", lambda r: r["actor"].update(roles=["admin"])),
    ("attributes claimed", lambda r: r["actor"].update(attributes={"clearance": 9})),
    ("a signal", lambda r: r.update(signals=[{"source": "risk", "kind": "ok"}])),
    ("a delegation chain", lambda r: r["actor"].update(chain=["other-agent"])),
]


@pytest.mark.parametrize(("what", "change"), CHANGES, ids=[c[0] for c in CHANGES])
def test_an_approval_is_refused_for_any_other_request(
    engine: tuple[charter.Engine, Clock], what: str, change: Any
) -> None:
    e, clock = engine
    req = pay(BIG)
    aid = _approved(e, req)
    other = _with(req, aid)
    change(other)
    clock.t += 5
    d = e.decide(other)
    assert not d.allowed, f"an approval for another request was used for {what}"
    assert d.hold_id is None
    # the approval still stands for the request it was given for
    assert e.decide(_with(req, aid)).allowed


def test_the_same_request_later_is_allowed_once(engine: tuple[charter.Engine, Clock]) -> None:
    e, clock = engine
    req = pay(BIG)
    aid = _approved(e, req)
    clock.t += 60
    again = _with(req, aid)
    again["context"] = {"time": "2026-01-01T00:01:00+00:00"}
    again["trace_id"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    again["idempotency_key"] = "resubmit-1"
    d = e.decide(again)
    assert d.allowed and any(h.kind == "approval" for h in d.rules)
    second = e.decide(_with(req, aid))
    assert not second.allowed and "already used" in " ".join(second.reasons)


def test_an_approval_for_the_500_usd_payment_does_not_allow_it_at_1_usd(
    engine: tuple[charter.Engine, Clock],
) -> None:
    """The report's probe: approved at 500 USD, resubmitted with cost 1 USD."""
    e, _ = engine
    req = pay(BIG)
    req["cost"] = {"USD": 500.0}
    aid = _approved(e, req)
    cheap = _with(req, aid)
    cheap["cost"] = {"USD": 1.0}
    d = e.decide(cheap)
    assert not d.allowed and d.hold_id is None
    assert any("different action" in h.reason for h in d.rules), d.rules


# ---- over the sidecar's real HTTP ------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    policy = __import__("tests.adversarial.engine_side", fromlist=["POLICY"]).POLICY.replace(
        "limit 1000 USD per day", "limit 100000 USD per day"
    )
    yield from http_for(tmp_path_factory, policy)


def test_http_an_approval_is_bound_to_the_cost(http: Http) -> None:
    req = pay(BIG)
    req["cost"] = {"USD": 500.0}
    d = http.post("/v1/decide", req).json()
    assert d["outcome"] == "require_approval"
    aid = d["obligations"]["approval_id"]
    ok = http.post(f"/v1/approvals/{aid}/approve", {"note": "fine"}, headers=http.approver)
    assert ok.status_code == 200, ok.text
    cheap = _with(req, aid)
    cheap["cost"] = {"USD": 1.0}
    r = http.post("/v1/decide", cheap)
    assert r.status_code == 200 and r.json()["outcome"] == "deny"
    r = http.post("/v1/decide", _with(req, aid))
    assert r.status_code == 200 and r.json()["outcome"] == "allow"
    r = http.post("/v1/decide", _with(req, aid))
    assert r.json()["outcome"] == "deny"
