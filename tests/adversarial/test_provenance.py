"""Attacks on provenance in requests (issue 18 phase B step 4; docs/design/agent-security.md §3.4).

Invariant attacked: a value is trusted only on positive evidence. A malformed ``action.provenance``
(length mismatches, deep or long paths, reserved labels, too many entries, unknown keys) is a
RequestError, never a decision; a value without provenance, computed in a condition, aliased, or
sourced from a call the engine does not know has no trusted label.
"""

from __future__ import annotations

from typing import Any

import pytest

import charter
from charter.engine.engine import Engine
from charter.enums import Outcome

POLICY = """
tool mail.send { arg to: list of string  arg subject: string  arg n: int }
permit user-recipients {
  action call mail.send
  when size(args.to) > 0 && args.to.all(r, "user" in labels(r))
  reason "Recipients the user typed."
}
"""

ENGINE = Engine(charter.loads(POLICY))
TO = ["ruth@ledgerly.example", "mark@exfil.example"]
USER = {"sources": [{"from": "user"}]}


def _decide(args: dict[str, Any], **action: Any) -> Any:
    return ENGINE.decide({"actor": {"id": "a"}, "action": {"target": "mail.send", "args": args, **action}})


def test_the_honest_request_is_allowed() -> None:
    assert _decide({"to": TO}, call_id="r1:send", provenance={"to": [USER, USER]}).outcome is Outcome.ALLOW


@pytest.mark.parametrize(
    "provenance",
    [
        {"to": [USER]},  # fewer entries than elements
        {"to": [USER, USER, USER]},  # more
        {"to": USER},  # one entry for a list
        {"subject": USER},  # an argument the request does not have
        {"to": [USER, {"sources": [{"from": "user"}], "labels": ["planned"]}]},  # reserved label
        {"to": [USER, {"labels": ["unknown"]}]},  # reserved label
        {"to": [USER, {"sources": [{"from": "planner"}]}]},  # unknown origin
        {"to": [USER, {"sources": [{"from": "user", "call": "r1:x"}]}]},  # two kinds at once
        {"to": [USER, {"sources": [{"call": "r1:x", "field": "a..b"}]}]},  # empty path part
        {"to": [USER, {"sources": [{"call": "r1:x", "field": ".".join(["a"] * 17)}]}]},  # deep path
        {"to": [USER, {"sources": [{"call": "r1:x", "field": "a" * 257}]}]},  # long path
        {"to": [USER, {"sources": [{"call": "x" * 257}]}]},  # long call id
        {"to": [USER, {"sources": [{"call": ""}]}]},  # empty call id
        {"to": [USER, {"sources": [{"call": {"nested": {"deep": 1}}}]}]},  # not a text
        {"to": [USER, {"sources": [USER] * 17}]},  # too many sources
        {"to": [USER, {"labels": [f"l{i}" for i in range(17)]}]},  # too many labels
        {"to": [USER, {"sources": [{"from": "user"}], "trust": "me"}]},  # unknown key
        {"to": [USER, "user"]},  # not an object
        {"to": [USER, {"labels": "user"}]},  # labels as a text
        {"to": [USER, {"sources": [{"from": ["user"]}]}]},  # an origin that is not a text
        {"to": [USER, {"sources": [{"call": "r1:x", "field": ".a"}]}]},  # leading dot
        {"to": [USER, {"sources": [{"call": "r1:x", "field": "a."}]}]},  # trailing dot
        {"to": [USER, {"sources": [{"call": "r1:x", "field": ""}]}]},  # empty path
        {"to": [USER, {"sources": [{"call": "r1:x", "field": 3}]}]},  # path not a text
        {"to": [USER, {"sources": [{"call": "r1:x", "field": "id", "tool": "contacts.search"}]}]},  # a claim
        [USER],  # not an object
        "user",
    ],
)
def test_malformed_provenance_is_a_request_error(provenance: Any) -> None:
    with pytest.raises(charter.RequestError):
        _decide(
            {"to": TO, "subject": "s"} if "subject" not in str(provenance) else {"to": TO},
            provenance=provenance,
        )


@pytest.mark.parametrize("call_id", ["", "x" * 257, 7, ["r1"]])
def test_a_malformed_call_id_is_a_request_error(call_id: Any) -> None:
    with pytest.raises(charter.RequestError):
        _decide({"to": TO}, call_id=call_id, provenance={"to": [USER, USER]})


def test_ten_thousand_elements_are_refused_not_decided() -> None:
    many = [f"p{i}@x.example" for i in range(10_000)]
    with pytest.raises(charter.RequestError):
        _decide({"to": many}, provenance={"to": [USER] * 10_000})


def test_one_element_without_user_source_denies_the_list() -> None:
    d = _decide({"to": TO}, provenance={"to": [USER, {"sources": [{"from": "agent"}]}]})
    assert d.outcome is Outcome.DENY


def test_an_unknown_call_gives_unknown_not_trust() -> None:
    eng = Engine(
        charter.loads(
            POLICY.replace('"user" in labels(r)', 'labels(r) == ["unknown"] && sources(r)[0].tool == ""')
        )
    )
    d = eng.decide(
        {
            "actor": {"id": "a"},
            "action": {
                "target": "mail.send",
                "args": {"to": TO},
                "provenance": {"to": [{"sources": [{"call": "r9:never"}]}] * 2},
            },
        }
    )
    assert d.outcome is Outcome.ALLOW  # the policy sees exactly 'unknown' and no tool


def test_no_provenance_means_no_labels_and_an_unknown_source() -> None:
    assert _decide({"to": TO}).outcome is Outcome.DENY
    eng = Engine(charter.loads(POLICY.replace('"user" in labels(r)', 'sources(r).all(s, s.kind == "user")')))
    d = eng.decide({"actor": {"id": "a"}, "action": {"target": "mail.send", "args": {"to": TO}}})
    assert d.outcome is Outcome.DENY  # all() over sources is not vacuously true


def test_a_value_computed_in_the_condition_has_no_labels() -> None:
    eng = Engine(charter.loads(POLICY.replace('"user" in labels(r)', '"user" in labels(r.upperAscii())')))
    d = eng.decide(
        {
            "actor": {"id": "a"},
            "action": {"target": "mail.send", "args": {"to": TO}, "provenance": {"to": [USER, USER]}},
        }
    )
    assert d.outcome is Outcome.DENY


def test_an_aliased_value_cannot_borrow_labels() -> None:
    # small integers and one-character texts are shared objects in Python: they carry no provenance,
    # so a labelled 7 in one argument does not label a 7 the condition computes or another argument
    eng = Engine(
        charter.loads(
            """
tool t { arg n: int  arg m: int  arg c: string }
permit p {
  action call t
  when "user" in labels(args.m) || "user" in labels(size(["a", "b"]) + 5) || "user" in labels(args.c)
  reason "R."
}
"""
        )
    )
    d = eng.decide(
        {
            "actor": {"id": "a"},
            "action": {
                "target": "t",
                "args": {"n": 7, "m": 7, "c": "x"},
                "provenance": {"n": USER, "c": USER},
            },
        }
    )
    assert d.outcome is Outcome.DENY


def test_reserved_labels_in_whole_argument_labels_are_ignored() -> None:
    eng = Engine(charter.loads(POLICY.replace('"user" in labels(r)', '"planned" in labels(r)')))
    d = eng.decide(
        {
            "actor": {"id": "a"},
            "action": {"target": "mail.send", "args": {"to": TO}, "labels": {"to": ["planned"]}},
        }
    )
    assert d.outcome is Outcome.DENY


def test_agent_sources_are_unknown_without_run_state() -> None:
    eng = Engine(charter.loads(POLICY.replace('"user" in labels(r)', '"planned" in labels(r)')))
    d = eng.decide(
        {
            "actor": {"id": "a"},
            "action": {
                "target": "mail.send",
                "args": {"to": TO},
                "provenance": {"to": [{"sources": [{"from": "agent"}]}] * 2},
            },
        }
    )
    assert d.outcome is Outcome.DENY


# ---- values from earlier calls: only the engine's own record of the call counts ----------------

CALLS = """
tool contacts.search { category read  arg name: string }
tool mail.send { arg to: list of string }
on result directory { action call contacts.search  then label trusted on email }
permit reads { action call contacts.search }
permit to-the-directory {
  action call mail.send
  when size(args.to) > 0 && args.to.all(r, "trusted" in labels(r))
}
"""


def _calls_engine() -> Engine:
    e = Engine(charter.loads(CALLS))
    d = e.decide(
        {
            "actor": {"id": "a"},
            "context": {"run": "r1"},
            "action": {"target": "contacts.search", "call_id": "c1", "args": {"name": "Ruth"}},
        }
    )
    e.settle(d.id)
    return e


def _send(e: Engine, run: str | None, source: dict[str, Any]) -> Any:
    req: dict[str, Any] = {
        "actor": {"id": "a"},
        "action": {
            "target": "mail.send",
            "call_id": "c2",
            "args": {"to": TO[:1]},
            "provenance": {"to": [{"sources": [source]}]},
        },
    }
    if run is not None:
        req["context"] = {"run": run}
    return e.decide(req)


def test_a_call_settled_in_another_run_vouches_for_nothing() -> None:
    e = _calls_engine()
    assert _send(e, "r1", {"call": "c1", "field": "email"}).outcome is Outcome.ALLOW
    # the same call id named from another run, or without a run: unknown
    assert _send(e, "r2", {"call": "c1", "field": "email"}).outcome is Outcome.DENY
    assert _send(e, None, {"call": "c1", "field": "email"}).outcome is Outcome.DENY


def test_a_field_label_does_not_reach_another_field_or_a_lookalike_path() -> None:
    e = _calls_engine()
    for field in ("name", "emails", "email_x", "e.mail"):
        assert _send(e, "r1", {"call": "c1", "field": field}).outcome is Outcome.DENY, field


def test_a_decision_that_was_not_allowed_leaves_no_call_record() -> None:
    e = Engine(charter.loads(CALLS.replace("permit reads { action call contacts.search }", "")))
    d = e.decide(
        {
            "actor": {"id": "a"},
            "context": {"run": "r1"},
            "action": {"target": "contacts.search", "call_id": "c1", "args": {"name": "Ruth"}},
        }
    )
    assert d.outcome is Outcome.DENY
    assert _send(e, "r1", {"call": "c1", "field": "email"}).outcome is Outcome.DENY
