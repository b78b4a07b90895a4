"""Labels a run is begun with are evidence for windowed `after labelled` clauses too (semantics 8.1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.adversarial.engine_side import BACKENDS, Clock, engine_on

import charter

POLICY = """
tool web.fetch { arg url: string }
tool email.send { arg to: string }
permit work { action call web.fetch, email.send  reason "ok" }
forbid send-after-untrusted-steps {
  action call email.send
  after labelled untrusted within 2 steps
  reason "No mail within two steps of untrusted content."
}
forbid send-after-untrusted-time {
  action call email.send
  after labelled tainted within 1m
  reason "No mail within a minute of tainted content."
}
"""


@pytest.fixture(params=BACKENDS)
def eng(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[charter.Engine, Clock]]:
    yield from engine_on(request.param, tmp_path, POLICY)


def _send(engine: charter.Engine) -> charter.Decision:
    return engine.decide(
        {
            "actor": {"id": "bot"},
            "action": {"target": "email.send", "args": {"to": "a@b"}},
            "context": {"run": "r1"},
        }
    )


def _fetch(engine: charter.Engine) -> charter.Decision:
    return engine.decide(
        {
            "actor": {"id": "bot"},
            "action": {"target": "web.fetch", "args": {"url": "x"}},
            "context": {"run": "r1"},
        }
    )


def test_a_label_the_run_began_with_is_within_a_step_window(eng: tuple[charter.Engine, Clock]) -> None:
    """On BASE the label was in run.labels but had no arrival, so every windowed clause missed it:
    a run begun `untrusted` could mail at once past `after labelled untrusted within 2 steps`."""
    engine, clock = eng
    engine.begin_run("r1", actor="bot", labels=["untrusted"])
    clock.t += 1
    d = _send(engine)
    assert d.outcome is charter.Outcome.DENY
    assert [h.id for h in d.rules] == ["send-after-untrusted-steps"]
    assert _fetch(engine).outcome is charter.Outcome.ALLOW  # step 1
    assert _fetch(engine).outcome is charter.Outcome.ALLOW  # step 2: the label is 2 steps back
    assert _send(engine).outcome is charter.Outcome.ALLOW


def test_a_label_the_run_began_with_is_within_a_time_window(eng: tuple[charter.Engine, Clock]) -> None:
    """It arrived when the run began: within `1m` for a minute, then out of the window."""
    engine, clock = eng
    engine.begin_run("r1", actor="bot", labels=["tainted"])
    clock.t += 60
    assert [h.id for h in _send(engine).rules] == ["send-after-untrusted-time"]
    clock.t += 1
    assert _send(engine).outcome is charter.Outcome.ALLOW
