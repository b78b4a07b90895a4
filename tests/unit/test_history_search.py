"""The ``where`` search over a run's history, specialised (engine/history.py): an entry built with
only the fields of ``earlier`` a condition reads, and the condition's fast path, give exactly what
the whole entry and the evaluator give; each entry checked is charged to the decision's CEL budget."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import charter
from charter.cel import CelCompileError, CelType, compile_condition
from charter.compiler.lower import earlier_fields
from charter.engine import view as view_module
from charter.engine.history import _Detail
from charter.enums import Outcome

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([2**63, 1.5, 2.0]),
    st.sampled_from(["", "m-1", "a"]),
)
VALUES = st.one_of(
    SCALARS, st.lists(SCALARS, max_size=2), st.dictionaries(st.sampled_from(["id", "x"]), SCALARS, max_size=2)
)
FIELD_MAPS = st.dictionaries(st.sampled_from(["id", "body", "to"]), VALUES, max_size=3)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A stored event as a store gives it back (some with a settlement, some with cut values)."""
    ev: dict[str, Any] = {
        "decision": draw(st.sampled_from(["d1", "d2"])),
        "kind": draw(st.sampled_from(["call", "delegate"])),
        "target": draw(st.sampled_from(["mail.send", "mail.delete"])),
        "at": draw(st.sampled_from([0.0, 5.0])),
        "args": draw(FIELD_MAPS),
        "labels": draw(st.lists(st.sampled_from(["user", "untrusted"]), max_size=2)),
    }
    if draw(st.booleans()):
        ev["call"] = draw(st.sampled_from(["c-1", "m-1"]))
    if draw(st.booleans()):
        ev["cut"] = {"body": "ab" * 32}
    if draw(st.booleans()):
        settlement: dict[str, Any] = {"outcome": "success", "result": draw(FIELD_MAPS), "labels": ["user"]}
        if draw(st.booleans()):
            settlement["cut"] = {"id": "cd" * 32}
        ev["settlement"] = settlement
    return ev


LEAVES = [
    "earlier.result.id", "earlier.args.body", "earlier.args.to", "earlier.call", "earlier.step",
    "earlier.tool", "earlier.outcome", "earlier.result.x", "earlier.nothing", "args.message_id",
    "'m-1'", "1", "earlier.labels", "earlier['result']", "earlier.result",
]  # fmt: skip
ATOMS = st.one_of(
    st.builds(lambda a, op, b: f"{a} {op} {b}", st.sampled_from(LEAVES), st.sampled_from(["==", "!=", "<"]),
              st.sampled_from(LEAVES)),
    st.builds(lambda a: f"has({a})", st.sampled_from(["earlier.result.id", "earlier.args", "earlier.zz"])),
    st.builds(lambda a: f"{a}.contains('m')", st.sampled_from(LEAVES)),
    st.sampled_from(["size(earlier) > 3", "'result' in earlier", "earlier == earlier",
                     "earlier.result.exists(k, k == 'id')", "'user' in earlier.labels"]),
)  # fmt: skip
CONDITIONS = st.recursive(
    ATOMS,
    lambda c: st.builds(lambda a, op, b: f"({a} {op} {b})", c, st.sampled_from(["&&", "||"]), c),
    max_leaves=3,
)
ENV = {"earlier": CelType.MAP(CelType.STRING, CelType.DYN), "args": CelType.MAP(CelType.STRING, CelType.DYN)}


@settings(max_examples=300, deadline=None)
@given(st.lists(events(), min_size=1, max_size=4), CONDITIONS, st.sampled_from(["m-1", "x"]))
def test_a_part_of_an_entry_and_the_fast_path_give_what_the_whole_entry_and_the_evaluator_give(
    evs: list[dict[str, Any]], text: str, message_id: str
) -> None:
    try:
        c = compile_condition(text, ENV)
    except CelCompileError:  # ill-typed ('1.contains(...)'): never reaches a policy
        return
    fields = earlier_fields(c.references)
    args = {"message_id": message_id}
    specialised = _Detail(lambda: evs, 7, {})
    whole = _Detail(lambda: evs, 7, {})
    specialised.events()
    whole.events()
    for i in range(len(evs)):
        got = c.fn({"earlier": specialised.part(i, fields), "args": args})
        want = c.evaluate({"earlier": whole.entry(i), "args": args})
        assert repr(got) == repr(want), (text, evs[i], fields)


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("earlier.result.id == args.message_id", {"result"}),
        ("has(earlier.step) && earlier['tool'] == 'x'", {"step", "tool"}),
        ("earlier.?args.body.orValue('') == ''", {"args"}),
        ("size(earlier) > 2", None),
        ("earlier[args.k] == 1", None),
        ("'step' in earlier", None),
        ("args.l.exists(earlier, earlier == 1)", set()),  # a local named earlier reads no entry
    ],
)
def test_the_fields_a_where_reads_come_from_the_checker(text: str, fields: set[str] | None) -> None:
    refs = compile_condition(text, {**ENV, "args": CelType.DYN}).references
    got = earlier_fields(frozenset(refs))
    assert got == (None if fields is None else frozenset(fields))


def test_a_named_condition_given_earlier_reads_the_whole_entry() -> None:
    policy = charter.loads(
        "policy p\ntool mail.send { arg body: string  result id: string }\n"
        "condition same(e: any, b: string) = e.args.body == b\n"
        'permit work { action call mail.send  reason "ok" }\n'
        "forbid f { action call mail.send\n  after call mail.send where same(earlier, args.body)\n"
        '  reason "r" }\n'
    )
    e = charter.Engine(policy)
    req = {
        "actor": {"id": "a"},
        "action": {"target": "mail.send", "args": {"body": "x"}},
        "context": {"run": "r"},
    }
    assert e.decide(req).outcome is Outcome.ALLOW
    assert e.decide(req).outcome is Outcome.DENY


SEARCH = """
policy p
tool mail.send { arg body: string  result id: string }
tool mail.delete { arg message_id: string }
permit work { action call mail.send, mail.delete  reason "ok" }
forbid delete-own-mail {
  action call mail.delete
  after call mail.send where earlier.result.id == args.message_id
  reason "r"
}
"""


def _run_of_sends(n: int) -> charter.Engine:
    e = charter.Engine(charter.loads(SEARCH))
    for i in range(n):
        d = e.decide({"actor": {"id": "a"}, "action": {"target": "mail.send", "args": {"body": "b"}},
                      "context": {"run": "r"}})  # fmt: skip
        e.settle(d.id, result={"id": f"m-{i}"})
    return e


def _delete(e: charter.Engine, message_id: str) -> charter.Decision:
    action = {"target": "mail.delete", "args": {"message_id": message_id}}
    return e.decide({"actor": {"id": "a"}, "action": action, "context": {"run": "r"}})


def test_each_entry_checked_is_charged_to_the_decisions_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    e = _run_of_sends(40)
    assert _delete(e, "m-0").outcome is Outcome.DENY  # the oldest entry matches
    # 'earlier.result.id == args.message_id' is 6 nodes: 7 units an entry; 40 entries take 280
    monkeypatch.setattr(view_module, "DECISION_COST", 200)
    d = _delete(e, "m-0")
    assert d.outcome is Outcome.DENY  # the budget ran out before the oldest entry: closed
    assert any("cost limit exceeded" in f.error for f in d.failures), d.failures
    d = _delete(e, "m-nowhere")  # no entry matches: without the budget this would be allowed
    assert d.outcome is Outcome.DENY and any("cost limit exceeded" in f.error for f in d.failures)
    assert _delete(e, "m-39").outcome is Outcome.DENY  # the newest matches within the budget
    monkeypatch.setattr(view_module, "DECISION_COST", 300)
    assert _delete(e, "m-nowhere2").outcome is Outcome.ALLOW


def test_a_part_kept_across_decisions_never_outlives_its_event() -> None:
    # the memory store replaces an event's dict when it is settled: the part built before the
    # settlement (no result) is not reused after it
    e = charter.Engine(charter.loads(SEARCH))
    assert e._history_parts is not None  # the memory store: parts are kept across decisions
    d = e.decide(
        {
            "actor": {"id": "a"},
            "action": {"target": "mail.send", "args": {"body": "b"}},
            "context": {"run": "r"},
        }
    )
    before = _delete(e, "m-1")  # unsettled: no result.id to compare, so closed
    assert before.outcome is Outcome.DENY and any("no such key" in f.error for f in before.failures)
    e.settle(d.id, result={"id": "m-1"})
    assert _delete(e, "m-2").outcome is Outcome.ALLOW  # m-1 was sent: m-2 was not
    after = _delete(e, "m-1")
    assert (after.outcome, tuple(after.failures)) == (Outcome.DENY, ())
    assert [h.id for h in after.rules] == ["delete-own-mail"]


def test_parts_are_kept_only_on_the_memory_store(tmp_path: Any) -> None:
    from charter.state import open_store

    e = charter.Engine(charter.loads(SEARCH), store=open_store(f"sqlite:///{tmp_path}/s.db"))
    assert e._history_parts is None
