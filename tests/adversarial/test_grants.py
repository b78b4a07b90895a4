"""Attacks on run grants (docs/security.md, "Run grants"): grants after the first decision, replays,
unknown kinds and params, NaN and huge values, concurrent begin/decide, 50 concurrent decisions."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.compiler.pipeline import compile_text
from charter.engine.engine import Engine
from charter.engine.grants import MAX_GRANTS, MAX_STRING, MAX_VALUES, GrantError
from charter.errors import Error

POLICY = """
tool mail.send {
  arg to: list of string
  arg body: string
}
tool files.read {
  arg path: string
}

grant send-mail {
  action call mail.send
  param to: set of string = []
  param count: int = 1
  covers args.to.all(r, r in grant.to)
  bound grant.to.size() > 0 && grant.to.size() <= 20
  uses grant.count
  reason "Mail the user asked for."
}

permit mail-the-user-asked-for {
  action call mail.send
  when granted("send-mail")
  reason "A grant of this run covers every recipient."
}

permit reading {
  action call files.read
  reason "Reading is fine."
}
"""


def _engine(store: Any = None) -> Engine:
    res = compile_text(POLICY)
    assert res.policy is not None, res.errors
    return Engine(res.policy, store=store)


def _mail(run: str, to: list[str], key: str | None = None) -> dict[str, Any]:
    req: dict[str, Any] = {
        "actor": {"id": "assistant"},
        "action": {"kind": "call", "target": "mail.send", "args": {"to": to, "body": "hi"}},
        "context": {"run": run},
    }
    if key:
        req["idempotency_key"] = key
    return req


def _read(run: str) -> dict[str, Any]:
    return {
        "actor": {"id": "assistant"},
        "action": {"kind": "call", "target": "files.read", "args": {"path": "/a"}},
        "context": {"run": run},
    }


def test_no_grants_after_the_first_recorded_step() -> None:
    e = _engine()
    assert e.decide(_read("r1")).allowed
    with pytest.raises(GrantError) as err:
        e.begin_run("r1", actor="assistant", grants=[{"kind": "send-mail", "to": ["a@x"]}])
    assert [p.code for p in err.value.problems] == ["G105"] and err.value.run_started
    assert not e.decide(_mail("r1", ["a@x"])).allowed


def test_a_second_begin_cannot_widen_a_run() -> None:
    e = _engine()
    e.begin_run("r1", actor="assistant", grants=[{"kind": "send-mail", "to": ["a@x"]}])
    with pytest.raises(GrantError):
        e.begin_run("r1", actor="assistant", grants=[{"kind": "send-mail", "to": ["evil@x"], "count": 99}])
    assert not e.decide(_mail("r1", ["evil@x"])).allowed


def test_uses_are_spent_and_a_replay_does_not_spend_twice() -> None:
    e = _engine()
    e.begin_run("r1", actor="assistant", grants=[{"kind": "send-mail", "to": ["a@x"], "count": 1}])
    first = e.decide(_mail("r1", ["a@x"], key="k1"))
    assert first.allowed
    assert [b.to_dict() for b in first.boundaries] == [
        {"kind": "grant", "id": "g1", "ok": True, "used": 1, "limit": 1, "detail": "send-mail"}
    ]
    again = e.decide(_mail("r1", ["a@x"], key="k1"))  # the same request retried: the same decision
    assert again.allowed and again.replayed
    assert not e.decide(_mail("r1", ["a@x"], key="k2")).allowed  # a new request: used up


def test_not_covered_outside_the_grant_and_without_a_run() -> None:
    e = _engine()
    e.begin_run("r1", actor="assistant", grants=[{"kind": "send-mail", "to": ["a@x"], "count": 5}])
    d = e.decide(_mail("r1", ["a@x", "mark@exfil.example"]))
    assert not d.allowed
    assert d.to_dict()["grants"] == [{"id": "g1", "kind": "send-mail", "covers": False, "uses_left": 5}]
    assert not e.decide(_mail("r-unknown", ["a@x"])).allowed
    no_run = _mail("r1", ["a@x"])
    del no_run["context"]
    assert not e.decide(no_run).allowed


def test_grants_bind_to_the_run_actor() -> None:
    e = _engine()
    e.begin_run("r1", actor="assistant", grants=[{"kind": "send-mail", "to": ["a@x"]}])
    other = _mail("r1", ["a@x"])
    other["actor"] = {"id": "intruder"}
    assert not e.decide(other).allowed


@pytest.mark.parametrize(
    ("grant", "code"),
    [
        ({"kind": "send-mial", "to": ["a@x"]}, "G101"),
        ({"to": ["a@x"]}, "G101"),
        ({"kind": "send-mail", "to": ["a@x"], "cc": ["b@x"]}, "G103"),
        ({"kind": "send-mail", "to": ["a@x"], "count": float("nan")}, "G103"),
        ({"kind": "send-mail", "to": ["a@x"], "count": 1.5}, "G103"),
        ({"kind": "send-mail", "to": ["a@x"], "count": 10**30}, "G103"),
        ({"kind": "send-mail", "to": ["a" * (MAX_STRING + 1)]}, "G103"),
        ({"kind": "send-mail", "to": [f"u{i}@x" for i in range(MAX_VALUES + 1)]}, "G103"),
        ({"kind": "send-mail", "to": [["nested"]]}, "G103"),
        ({"kind": "send-mail", "to": "a@x"}, "G103"),
        ({"kind": "send-mail", "to": []}, "G104"),
        ({"kind": "send-mail", "to": [f"u{i}@x" for i in range(21)]}, "G104"),
        ({"kind": "send-mail", "to": ["a@x"], "count": -1}, "G103"),
    ],
)
def test_refused_grants_store_nothing(grant: dict[str, Any], code: str) -> None:
    e = _engine()
    good = {"kind": "send-mail", "to": ["a@x"]}
    with pytest.raises(GrantError) as err:
        e.begin_run("r1", actor="assistant", grants=[good, grant])
    assert isinstance(err.value, Error)
    assert [p.code for p in err.value.problems] == [code]
    assert err.value.refused == (1,)
    assert e.store.run_state("run:r1").grants == ()  # all or nothing
    assert not e.decide(_mail("r1", ["a@x"])).allowed


def test_unknown_kind_says_did_you_mean() -> None:
    e = _engine()
    with pytest.raises(GrantError) as err:
        e.begin_run("r1", actor="assistant", grants=[{"kind": "send-mial"}])
    assert "send-mail" in err.value.problems[0].help


def test_at_most_64_grants() -> None:
    e = _engine()
    with pytest.raises(GrantError):
        e.begin_run("r1", actor="a", grants=[{"kind": "send-mail", "to": ["a@x"]}] * (MAX_GRANTS + 1))


def test_narrow_never_widens() -> None:
    e = _engine()
    e.begin_run("r1", actor="assistant", grants=[{"kind": "send-mail", "to": ["a@x"], "count": 1}])
    run = e.narrow_run("r1", uses={"g1": 50})
    assert run.grants[0].uses_left == 1
    e.narrow_run("r1", revoke=["g1"])
    assert not e.decide(_mail("r1", ["a@x"])).allowed


def test_concurrent_begin_and_decide() -> None:
    """Whichever wins, a decision never sees grants declared after its step."""
    for i in range(20):
        e = _engine()
        run = f"r{i}"
        errors: list[Exception] = []

        def begin(e: Engine = e, run: str = run, errors: list[Exception] = errors) -> None:
            try:
                e.begin_run(run, actor="assistant", grants=[{"kind": "send-mail", "to": ["a@x"]}])
            except GrantError as exc:
                errors.append(exc)

        t1 = threading.Thread(target=begin)
        t2 = threading.Thread(target=lambda e=e, run=run: e.decide(_read(run)))
        t1.start()
        t2.start()
        t1.join()
        t2.join()
        rs = e.store.run_state(f"run:{run}")
        assert rs.steps == 1
        assert bool(rs.grants) == (not errors)


def test_exactly_n_allowed_under_50_concurrent_decisions() -> None:
    e = _engine()
    e.begin_run("r1", actor="assistant", grants=[{"kind": "send-mail", "to": ["a@x"], "count": 7}])
    outcomes: list[bool] = []
    lock = threading.Lock()

    def one() -> None:
        d = e.decide(_mail("r1", ["a@x"]))
        with lock:
            outcomes.append(d.allowed)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(True) == 7


@settings(max_examples=40, deadline=None)
@given(
    uses=st.integers(min_value=0, max_value=6),
    tries=st.integers(min_value=0, max_value=10),
    narrow_to=st.one_of(st.none(), st.integers(min_value=0, max_value=10)),
)
def test_allowed_count_is_min_of_uses_and_tries(uses: int, tries: int, narrow_to: int | None) -> None:
    """Whatever the planner asked and whatever narrowing followed, never more than the grant allows."""
    e = _engine()
    e.begin_run("r1", actor="assistant", grants=[{"kind": "send-mail", "to": ["a@x"], "count": uses}])
    limit = uses
    if narrow_to is not None:
        e.narrow_run("r1", uses={"g1": narrow_to})
        limit = min(uses, narrow_to)
    allowed = sum(e.decide(_mail("r1", ["a@x"])).allowed for _ in range(tries))
    assert allowed == min(limit, tries)
