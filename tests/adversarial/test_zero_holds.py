"""Attack class: decide at zero cost, settle the real cost (a settlement unlike its reservation).

Invariant attacked: what a settlement says was spent is counted, whatever the decision reserved.
An agent that declares no cost up front and settles the real one afterwards must see every
settlement in its budget, and a zero-cost hold must release cleanly. On Redis a zero hold's
removal wrote the integer ``-0`` (Lua's negated zero), which Redis refuses: from the second such
settlement on, every commit failed, the spend was never counted and the hold expired by TTL
(settling a zero hold at zero failed the same way).
Every store, and the sidecar over HTTP on Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.adversarial.engine_side import BACKENDS, Clock, budget_line, engine_on, pay, serve
from tests.state.conftest import cleanup, need_redis, store_url

import charter
from charter.enums import Outcome


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[charter.Engine, Clock]]:
    yield from engine_on(request.param, tmp_path)


def test_every_settlement_of_a_zero_cost_decision_counts(engine: tuple[charter.Engine, Clock]) -> None:
    e, _ = engine
    for n in range(1, 4):
        d = e.decide(pay(0.0))
        assert d.outcome is Outcome.ALLOW
        st = e.settle(d.id, actual_cost={"USD": 300.0})
        assert st.committed and not st.failures, st.to_dict()
        assert budget_line(e, d) == (n * 300_000_000, 0)
    # 900 USD settled of the 1,000 USD a day
    assert e.decide(pay(200.0)).outcome is Outcome.DENY
    assert e.decide(pay(50.0)).outcome is Outcome.ALLOW


def test_zero_cost_holds_settle_in_any_order(engine: tuple[charter.Engine, Clock]) -> None:
    e, _ = engine
    held = [e.decide(pay(0.0)) for _ in range(4)]
    for d, actual in zip(held, (0.0, 2.0, 0.0, 3.0), strict=True):
        st = e.settle(d.id, actual_cost={"USD": actual})
        assert st.committed and not st.failures, st.to_dict()
    assert budget_line(e, held[3]) == (5_000_000, 0)


def test_http_zero_cost_settlements_count_on_redis(tmp_path: Path) -> None:
    need_redis()
    tag = "adv_" + uuid.uuid4().hex[:10]
    for http in serve(tmp_path, store=store_url("redis", tmp_path, tag)):
        used = []
        for _ in range(3):
            d = http.post("/v1/decide", pay(0.0)).json()
            st = http.post("/v1/settle", {"decision_id": d["id"], "actual_cost": {"USD": 300.0}}).json()
            assert st["committed"] and not st["failures"], st
            used.append(st["boundaries"][0]["used"])
        assert used == [300.0, 600.0, 900.0]
        assert http.post("/v1/decide", pay(200.0)).json()["outcome"] == "deny"
    cleanup("redis", tag)
