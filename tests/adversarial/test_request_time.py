"""Attack class: the time a request claims (``context.time``).

Invariant attacked: every window, hold and run is timed by the engine's clock. ``context.time`` is
the caller's claim: conditions read it, but an agent that names another day, hour or minute per
request never gets a fresh calendar budget or rate window, and a time at the edge of the calendar
(year 1 or 9999) is decided like any other request, never a 5xx. On every store and over the
sidecar's real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.adversarial.engine_side import BACKENDS, Clock, Http, engine_on, http_for, pay

import charter
from charter.enums import Outcome

POLICY = """
policy times
units USD
tool pay { arg amount: double }
permit pay {
  action call pay
  reason "Payments."
}
budget daily {
  scope agent
  action call pay
  limit 1 USD per day
  reason "1 USD per agent and day."
}
rate per-minute {
  scope agent
  action call pay
  limit 3 per 1m
  reason "3 payments per agent and minute."
}
"""

#: a new day (then a new minute) per request: each would be a fresh window if the claim timed it
DAYS = [f"2026-01-{d:02d}T10:00:00Z" for d in range(2, 10)]
MINUTES = [f"2026-01-01T{h:02d}:00:00Z" for h in range(1, 9)]
EDGES = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2026-01-01T00:00:00+14:00"]


def _pay(actor: str, amount: float, at: str) -> dict[str, object]:
    return {
        "actor": {"id": actor},
        "action": {"target": "pay", "args": {"amount": amount}},
        "cost": {"USD": amount},
        "context": {"time": at},
    }


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[charter.Engine, Clock]]:
    yield from engine_on(request.param, tmp_path, POLICY)


def test_a_claimed_day_never_opens_a_fresh_calendar_budget(engine: tuple[charter.Engine, Clock]) -> None:
    e, _ = engine
    outcomes = [e.decide(_pay("a", 0.6, at)).outcome for at in DAYS]
    assert outcomes[0] is Outcome.ALLOW
    assert set(outcomes[1:]) == {Outcome.DENY}  # 0.6 + 0.6 > 1 USD, whatever day is claimed


def test_a_claimed_minute_never_opens_a_fresh_rate_window(engine: tuple[charter.Engine, Clock]) -> None:
    e, _ = engine
    outcomes = [e.decide(_pay("b", 0.0, at)).outcome for at in MINUTES]
    assert outcomes[:3] == [Outcome.ALLOW] * 3
    assert set(outcomes[3:]) == {Outcome.DENY}


@pytest.mark.parametrize("at", EDGES)
def test_a_time_at_the_edge_of_the_calendar_is_decided(engine: tuple[charter.Engine, Clock], at: str) -> None:
    e, _ = engine
    d = e.decide(_pay("c", 0.5, at))
    assert d.outcome is Outcome.ALLOW
    assert e.decide(_pay("c", 0.6, at)).outcome is Outcome.DENY  # the same budget line, on the clock


def test_conditions_still_read_the_claimed_time() -> None:
    e = charter.Engine(
        charter.loads(
            POLICY + 'forbid claimed-night {\n  action call pay\n  when context.time < 0.0\n  reason "r"\n}\n'
        ),
        clock=Clock(),
    )
    assert e.decide(_pay("d", 0.1, "1969-12-31T23:00:00Z")).outcome is Outcome.DENY
    assert e.decide(_pay("d", 0.1, "2026-01-01T00:00:00Z")).outcome is Outcome.ALLOW


# ---- over the sidecar's real HTTP ------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    yield from http_for(tmp_path_factory)


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_http_a_time_at_the_edge_of_the_calendar_is_not_a_5xx(http: Http, at: str) -> None:
    r = http.post("/v1/decide", pay(1.0, context={"time": at}))
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "allow"


def test_http_claimed_days_share_one_budget(http: Http) -> None:
    first = http.post("/v1/decide", pay(600.0, context={"time": DAYS[0]})).json()
    again = [http.post("/v1/decide", pay(600.0, context={"time": at})).json()["outcome"] for at in DAYS[1:4]]
    assert first["outcome"] == "allow" and set(again) == {"deny"}
