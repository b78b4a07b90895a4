"""Where a run's labels come from today: every row and clause of docs/semantics.md section 8.1.

These pin the documented behaviour; the single rule proposed in docs/design/agent-security.md
("Run labels: one rule") changes them on purpose, and this file with them.
"""

from __future__ import annotations

from typing import Any

import charter
from charter.enums import Outcome

BASE = """
roles r
agent a { role r }
tool read {}
tool send { arg to: string }
tool other {}
permit reads { action call read, send  reason "ok" }
"""

AFTER = (
    BASE
    + """
forbid after-untrusted {
  action call send
  after labelled untrusted
  reason "after untrusted"
}
forbid after-tainted-recently {
  action call send
  after labelled tainted within 3 steps
  reason "after tainted, 3 steps"
}
"""
)


def _engine(text: str) -> charter.Engine:
    return charter.Engine(charter.loads(text))


def _decide(e: charter.Engine, target: str, run: str, labels: dict[str, list[str]] | None = None) -> Any:
    args = {"to": "b"} if target == "send" else {}
    req = {"actor": {"id": "a"}, "action": {"target": target, "args": args, "labels": labels or {}}}
    req["context"] = {"run": run}
    return e.decide(req)


def _send(e: charter.Engine, run: str) -> tuple[Outcome, list[str]]:
    d = _decide(e, "send", run)
    return d.outcome, [h.id for h in d.rules]


def test_argument_labels_of_an_allowed_action_join_the_run_without_a_settle() -> None:
    e = _engine(AFTER)
    assert _decide(e, "read", "r1", {"q": ["untrusted"]}).outcome is Outcome.ALLOW
    assert _send(e, "r1") == (Outcome.DENY, ["after-untrusted"])


def test_labels_of_a_denied_action_do_not_join() -> None:
    e = _engine(AFTER)
    assert _decide(e, "other", "r1", {"q": ["untrusted"]}).outcome is Outcome.DENY
    assert _send(e, "r1") == (Outcome.ALLOW, ["reads"])


def test_settle_labels_join_the_run() -> None:
    e = _engine(AFTER)
    d = _decide(e, "read", "r1")
    assert e.settle(d.id, labels=["untrusted"]).labels == ("untrusted",)
    assert _send(e, "r1") == (Outcome.DENY, ["after-untrusted"])


def test_on_result_labels_join_the_run() -> None:
    text = AFTER + "on result untrusted-read {\n  action call read\n  then label untrusted\n}\n"
    e = _engine(text)
    e.settle(_decide(e, "read", "r1").id)
    assert _send(e, "r1") == (Outcome.DENY, ["after-untrusted"])


def test_a_windowed_after_labelled_sees_argument_labels_only() -> None:
    e = _engine(AFTER)
    # the label at settlement: in run.labels, but no step mark, so the window never holds
    e.settle(_decide(e, "read", "r1").id, labels=["tainted"])
    assert _send(e, "r1") == (Outcome.ALLOW, ["reads"])
    # the same label on an allowed action's argument sets the mark
    _decide(e, "read", "r2", {"q": ["tainted"]})
    assert _send(e, "r2") == (Outcome.DENY, ["after-tainted-recently"])


def test_run_labels_in_a_condition_see_every_source() -> None:
    text = BASE + 'forbid seen {\n  action call send\n  when "tainted" in run.labels\n  reason "seen"\n}\n'
    e = _engine(text)
    e.settle(_decide(e, "read", "r1").id, labels=["tainted"])
    assert _send(e, "r1") == (Outcome.DENY, ["seen"])
    _decide(e, "read", "r2", {"q": ["tainted"]})
    assert _send(e, "r2") == (Outcome.DENY, ["seen"])


def test_before_labelled_turns_false_from_any_source() -> None:
    text = BASE + 'forbid first {\n  action call send\n  before labelled untrusted\n  reason "x"\n}\n'
    e = _engine(text)
    assert _send(e, "r1") == (Outcome.DENY, ["first"])
    e.settle(_decide(e, "read", "r1").id, labels=["untrusted"])
    assert _send(e, "r1") == (Outcome.ALLOW, ["reads"])
