"""Run labels, one rule: every row and clause of docs/semantics.md section 8.1.

A run's labels are the labels of everything that entered it (settled results, `on result`
checks, the arguments, elements and provenance of allowed calls); each records the step and time
of its latest arrival, and `run.labels`, `after labelled`, `after labelled ... within` and
`before labelled` all see it the same way, whatever the policy. (Issue 18 step 3 changed these
tests on purpose: a settled label used to be invisible to a windowed `after labelled`, and a
policy without history clauses kept no argument labels.)
"""

from __future__ import annotations

from typing import Any

import charter
from charter.enums import Outcome
from charter.state import StoreError, StoreFault
from charter.state.memory import MemoryStore

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


def _decide(
    e: charter.Engine, target: str, run: str | None, labels: dict[str, list[str]] | None = None
) -> Any:
    args = {"to": "b"} if target == "send" else {}
    req: dict[str, Any] = {
        "actor": {"id": "a"},
        "action": {"target": target, "args": args, "labels": labels or {}},
    }
    if run is not None:
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


def test_a_windowed_after_labelled_sees_settled_labels_too() -> None:
    e = _engine(AFTER)
    # the label at settlement arrives at the run's current step: inside the window
    e.settle(_decide(e, "read", "r1").id, labels=["tainted"])
    assert _send(e, "r1") == (Outcome.DENY, ["after-tainted-recently"])
    # the same label on an allowed action's argument arrives at that action's step
    _decide(e, "read", "r2", {"q": ["tainted"]})
    assert _send(e, "r2") == (Outcome.DENY, ["after-tainted-recently"])


def test_a_windowed_after_labelled_counts_steps_from_the_latest_arrival() -> None:
    e = _engine(AFTER)
    e.settle(_decide(e, "read", "r1").id, labels=["tainted"])  # arrives at step 1
    for _ in range(3):
        assert _decide(e, "read", "r1").outcome is Outcome.ALLOW  # steps 2-4
    assert _send(e, "r1") == (Outcome.ALLOW, ["reads"])  # 4 - 1 >= 3: outside the window
    # it arrives again (an argument this time): the window starts afresh
    _decide(e, "read", "r1", {"q": ["tainted"]})
    assert _send(e, "r1") == (Outcome.DENY, ["after-tainted-recently"])


def test_an_on_result_label_sets_the_window_too() -> None:
    text = AFTER + "on result tainted-read {\n  action call read\n  then label tainted\n}\n"
    e = _engine(text)
    e.settle(_decide(e, "read", "r1").id)
    assert _send(e, "r1") == (Outcome.DENY, ["after-tainted-recently"])


def test_a_windowed_after_labelled_in_seconds_sees_settled_labels() -> None:
    text = BASE + (
        'forbid recent {\n  action call send\n  after labelled tainted within 60s\n  reason "r"\n}\n'
    )
    t = [1_000_000.0]
    e = charter.Engine(charter.loads(text), clock=lambda: t[0])
    e.settle(_decide(e, "read", "r1").id, labels=["tainted"])
    t[0] += 30
    assert _send(e, "r1") == (Outcome.DENY, ["recent"])
    t[0] += 61
    assert _send(e, "r1") == (Outcome.ALLOW, ["reads"])


def test_provenance_labels_join_the_run() -> None:
    e = _engine(AFTER)

    def with_provenance(target: str) -> Outcome:
        prov = {"to": {"sources": [{"from": "user"}], "labels": ["untrusted"]}}
        action = {"target": target, "args": {"to": "b"}, "provenance": prov}
        return e.decide({"actor": {"id": "a"}, "action": action, "context": {"run": "r1"}}).outcome

    assert with_provenance("other") is Outcome.DENY  # denied: adds nothing
    assert _send(e, "r1") == (Outcome.ALLOW, ["reads"])
    assert with_provenance("read") is Outcome.ALLOW
    assert _send(e, "r1") == (Outcome.DENY, ["after-untrusted"])
    assert e.store.run_state("run:r1").labels == {"untrusted"}


def test_a_policy_without_history_clauses_keeps_run_labels() -> None:
    # a policy reloaded with an `after labelled` clause sees the run's whole past
    store = MemoryStore()
    plain = charter.Engine(charter.loads(BASE), store=store)
    assert _decide(plain, "read", "r1", {"q": ["untrusted"]}).outcome is Outcome.ALLOW
    plain.settle(_decide(plain, "read", "r1").id, labels=["tainted"])
    assert store.run_state("run:r1").labels == {"untrusted", "tainted"}
    after = charter.Engine(charter.loads(AFTER), store=store)
    assert _send(after, "r1") == (Outcome.DENY, ["after-tainted-recently", "after-untrusted"])


def test_a_held_action_adds_nothing_while_it_waits() -> None:
    text = (
        BASE
        + (
            "group g { members alice }\n"
            'require approval ask {\n  action call other\n  approvers g\n  reason "ask"\n}\n'
            'permit others {\n  action call other\n  reason "ok"\n}\n'
        )
        + AFTER[len(BASE) :]
    )
    e = _engine(text)
    held = _decide(e, "other", "r1", {"q": ["untrusted"]})
    assert held.outcome is Outcome.REQUIRE_APPROVAL
    assert _send(e, "r1") == (Outcome.ALLOW, ["reads"])


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


class _NoLabels(MemoryStore):
    def mark_labels(self, run_key: str, labels: frozenset[str], *, now: float, ttl_s: float) -> None:
        raise StoreError(StoreFault.UNAVAILABLE, "test", "connection refused")


def test_labels_that_cannot_be_kept_deny_the_action() -> None:
    # a policy without run state adds an allowed action's labels in one store operation
    e = charter.Engine(charter.loads(BASE), store=_NoLabels())
    d = _decide(e, "read", "r1", {"q": ["untrusted"]})
    assert d.outcome is Outcome.DENY and "run labels" in d.failures[0].error
    assert _decide(e, "read", "r1").outcome is Outcome.ALLOW  # nothing to keep: no store call
    assert _decide(e, "read", None, {"q": ["untrusted"]}).outcome is Outcome.ALLOW  # no run
