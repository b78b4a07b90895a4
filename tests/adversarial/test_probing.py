"""Attack: an agent probing the boundary, varying each refused request so no counter sees a loop.

``repeated call`` counts identical calls only, so an agent that asks for something different each
time it is refused was never stopped. ``trigger denied more than N times within D`` counts the
denials of an agent, whatever it asked for (on every store), and halts it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.adversarial.engine_side import BACKENDS, Clock, engine_on

import charter
from charter.enums import Outcome

POLICY = """
policy probing
group operators { members olga, peter }
stops { operators operators }
tool read { arg id: string }
tool admin.grant { arg role: string }
permit reads {
  action call read
  reason "Anyone reads."
}
tripwire probing {
  trigger denied more than 4 times within 10m
  reason "5 denials within 10 minutes halt the agent."
}
"""


@pytest.fixture(params=BACKENDS)
def eng(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[charter.Engine, Clock]]:
    yield from engine_on(request.param, tmp_path, POLICY)


def _ask(e: charter.Engine, target: str, arg: str, agent: str = "bot") -> charter.Decision:
    key = "role" if target == "admin.grant" else "id"
    return e.decide({"actor": {"id": agent}, "action": {"target": target, "args": {key: arg}}})


def test_varied_denials_halt_the_agent(eng: tuple[charter.Engine, Clock]) -> None:
    e, clock = eng
    for i in range(4):
        assert _ask(e, "admin.grant", f"admin-{i}").outcome is Outcome.DENY
        assert _ask(e, "read", f"doc-{i}").outcome is Outcome.ALLOW  # allowed requests are not counted
        clock.t += 60
    d = _ask(e, "undeclared.tool", "x")
    assert d.outcome is Outcome.HALT
    assert [h.id for h in d.rules] == ["probing"]
    assert _ask(e, "read", "doc-9").outcome is Outcome.HALT  # the stop holds
    assert _ask(e, "read", "doc-9", agent="other").outcome is Outcome.ALLOW  # per agent


def test_denials_outside_the_window_do_not_add_up(eng: tuple[charter.Engine, Clock]) -> None:
    e, clock = eng
    for i in range(4):
        assert _ask(e, "admin.grant", f"admin-{i}").outcome is Outcome.DENY
    clock.t += 601
    for i in range(4):
        assert _ask(e, "admin.grant", f"again-{i}").outcome is Outcome.DENY
    assert _ask(e, "read", "doc").outcome is Outcome.ALLOW


def test_the_trigger_prints_as_written() -> None:
    from charter.syntax.printer import format_text

    out = format_text(POLICY)
    assert out is not None and "trigger denied more than 4 times within 10m" in out
