"""Attacks on rules about a run's history with a request that names no run (issue 15 item 12;
docs/semantics.md §3.1).

Invariant attacked: a rule that reads the run's history (``after``, ``before``, ``run.*``) is never
skipped silently: without ``context.run`` the history is unknown, the rule fails by its ``on error``
(deny by default) and the failure is recorded. Leaving the run out can never get a forbidden action
through. On every store and over the sidecar's real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.adversarial.engine_side import BACKENDS, Clock, Http, engine_on, serve

import charter

POLICY = """
policy history
roles agent
tool web.fetch { }
tool email.send { arg to: string }
tool pay { arg amount: double }
permit anyone {
  action call any
  reason "Anything declared, unless a rule below says otherwise."
}
on result inbound-is-untrusted {
  action call web.fetch
  then label untrusted
  reason "Fetched pages are untrusted."
}
forbid no-mail-after-untrusted {
  action call email.send
  after labelled untrusted
  reason "No mail after reading untrusted content."
}
forbid pay-only-before-mail {
  action call pay
  after call email.send
  reason "No payment after a mail."
}
forbid pay-needs-quiet-run {
  action call pay
  when "untrusted" in run.labels
  reason "No payment in a run with untrusted data."
}
"""

MAIL = {"actor": {"id": "a1"}, "action": {"target": "email.send", "args": {"to": "x@example.com"}}}
PAY = {"actor": {"id": "a1"}, "action": {"target": "pay", "args": {"amount": 5.0}}}
FETCH = {"actor": {"id": "a1"}, "action": {"target": "web.fetch"}}


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[charter.Engine, Clock]]:
    yield from engine_on(request.param, tmp_path, POLICY)


def _run(req: dict[str, Any], run: str | None) -> dict[str, Any]:
    return {**req, "context": {"run": run}} if run else dict(req)


@pytest.mark.parametrize(
    ("req", "rules"),
    [
        (MAIL, ["no-mail-after-untrusted"]),
        (PAY, ["pay-needs-quiet-run", "pay-only-before-mail"]),
    ],
)
def test_without_a_run_history_rules_fail_closed(
    engine: tuple[charter.Engine, Clock], req: dict[str, Any], rules: list[str]
) -> None:
    e, _ = engine
    d = e.decide(req)
    assert d.outcome is charter.Outcome.DENY, d
    assert [h.id for h in d.rules] == rules
    assert all("context.run" in (h.error or "") for h in d.rules)
    assert {f.where for f in d.failures} == {f"rule {r}" for r in rules}
    assert all(f.took == "deny" for f in d.failures)


def test_the_labelled_run_is_enforced_and_leaving_the_run_out_does_not_help(
    engine: tuple[charter.Engine, Clock],
) -> None:
    """The report's probe: settle labels the run untrusted; a mail without the run must not pass."""
    e, _ = engine
    assert e.decide(_run(MAIL, "r1")).allowed  # a clean run
    fetched = e.decide(_run(FETCH, "r1"))
    assert fetched.allowed
    assert "untrusted" in e.settle(fetched.id).labels
    assert e.decide(_run(MAIL, "r1")).outcome is charter.Outcome.DENY
    assert e.decide(MAIL).outcome is charter.Outcome.DENY  # no run: unknown history, fail closed
    assert e.decide(_run(MAIL, "r2")).allowed  # another, clean run


def test_an_explicit_fail_open_is_counted_and_visible(engine: tuple[charter.Engine, Clock]) -> None:
    del engine
    policy = POLICY.replace(
        '  reason "No mail after reading untrusted content."\n',
        '  reason "No mail after reading untrusted content."\n  on error ignore\n',
    )
    e = charter.Engine(charter.loads(policy), clock=Clock())
    d = e.decide(MAIL)
    assert d.allowed
    assert [(f.where, f.took) for f in d.failures] == [("rule no-mail-after-untrusted", "ignore (fail-open)")]


def test_a_permit_that_needs_history_does_not_apply_without_a_run() -> None:
    policy = """
policy p
tool pay { }
tool verify { }
permit verify { action call verify }
permit pay-after-verify {
  action call pay
  after call verify
}
"""
    e = charter.Engine(charter.loads(policy), clock=Clock())
    d = e.decide({"actor": {"id": "a"}, "action": {"target": "pay"}})
    assert d.outcome is charter.Outcome.DENY and d.failures
    run = {"actor": {"id": "a"}, "action": {"target": "verify"}, "context": {"run": "r"}}
    assert e.decide(run).allowed
    assert e.decide({"actor": {"id": "a"}, "action": {"target": "pay"}, "context": {"run": "r"}}).allowed


# ---- over the sidecar's real HTTP ------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    yield from serve(tmp_path_factory.mktemp("history"), POLICY)


def test_http_a_mail_without_a_run_is_denied(http: Http) -> None:
    r = http.post("/v1/decide", MAIL)
    assert r.status_code == 200 and r.json()["outcome"] == "deny"
    assert r.json()["rules"][0]["id"] == "no-mail-after-untrusted"
    assert http.post("/v1/decide", _run(MAIL, "clean")).json()["outcome"] == "allow"
