"""Attacks on importing a run's history (issue 18 step 7; docs/semantics.md 8.3).

Invariant attacked: an import is all or nothing -- out of order, duplicated inside the import,
an undeclared target, a malformed argument or provenance, too many events or too many bytes:
RunImportError (400 over HTTP) and nothing is written; a retried import skips the calls the run
already has; imported calls count as the run's history for every clause.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.adversarial.engine_side import BACKENDS, Clock, engine_on, serve

import charter
from charter.engine.runimport import MAX_IMPORT_EVENTS, RunImportError
from charter.enums import Outcome

POLICY = """
policy imports
tool mail.send {
  arg to: string
  result id: string
}
tool mail.delete { arg message_id: string }
tool web.fetch { arg url: string }
permit work { action call mail.send, mail.delete, web.fetch  reason "ok" }
forbid delete-own-mail {
  action call mail.delete
  after call mail.send where earlier.result.id == args.message_id
  reason "A run never deletes mail it sent itself."
}
forbid send-after-web {
  action call mail.send
  after labelled untrusted within 2 steps
  reason "No mail right after the web."
}
"""
T = 1_767_225_600.0


def _ev(i: int, target: str = "mail.send", base: float = T, **extra: Any) -> dict[str, Any]:
    args = {"to": "a@b.example"} if target == "mail.send" else {"url": "https://x.example"}
    ev: dict[str, Any] = {"call_id": f"c-{i}", "target": target, "args": args, "at": base + i}
    ev.update(extra)
    return ev


@pytest.fixture(params=BACKENDS)
def eng(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[charter.Engine, Clock]]:
    yield from engine_on(request.param, tmp_path, POLICY)


def _delete(e: charter.Engine, message_id: str) -> charter.Decision:
    args = {"message_id": message_id}
    return e.decide(
        {"actor": {"id": "bot"}, "action": {"target": "mail.delete", "args": args}, "context": {"run": "r1"}}
    )


def test_imported_calls_are_the_runs_history(eng: tuple[charter.Engine, Clock]) -> None:
    e, clock = eng
    clock.t = T + 100
    done = e.import_run(
        "r1", actor="bot", events=[_ev(1, result={"id": "m-1"}), _ev(2, "web.fetch", labels=["untrusted"])]
    )
    assert (done.imported, done.skipped) == (2, 0)
    assert e.store.run_state("run:r1").steps == 2
    assert _delete(e, "m-1").outcome is Outcome.DENY  # the imported result is history
    assert _delete(e, "m-2").outcome is Outcome.ALLOW
    send = {
        "actor": {"id": "bot"},
        "action": {"target": "mail.send", "args": {"to": "x"}},
        "context": {"run": "r1"},
    }
    assert e.decide(send).outcome is Outcome.DENY  # the imported label arrived at step 2 of 3
    assert _delete(e, "m-3").outcome is Outcome.ALLOW  # step 4
    assert e.decide(send).outcome is Outcome.ALLOW  # 4 - 2 >= 2: out of the window
    # retried: nothing appended twice
    again = e.import_run("r1", actor="bot", events=[_ev(1, result={"id": "m-1"}), _ev(2, "web.fetch")])
    assert (again.imported, again.skipped) == (0, 2)
    exported = e.export_run("r1")
    assert [x["call_id"] for x in exported["events"][:2]] == ["c-1", "c-2"]
    assert exported["events"][0]["result"] == {"id": "m-1"} and "untrusted" in exported["labels"]


BAD: list[tuple[Any, str]] = [
    ([_ev(2), _ev(1)], "time order"),
    ([_ev(1), {**_ev(2), "call_id": "c-1"}], "appears twice"),
    ([_ev(1, "shell.exec")], "not a tool the policy declares"),
    ([_ev(1, args={"to": "x" * 300_000})], r"events\[1\]: request field .action.args.to."),
    ([_ev(1, provenance={"nope": {"labels": ["x"]}})], r"events\[1\]: request field .action.provenance"),
    ([_ev(1, at=float("nan"))], "at"),
    ([_ev(1, result=["m"])], "result"),
    ([_ev(1, extra=1)], "unknown key"),
    ([_ev(1, labels=[""])], "labels"),
    ([_ev(i) for i in range(MAX_IMPORT_EVENTS + 1)], "at most"),
    ([_ev(i, args={"to": "y" * 200}) for i in range(6000)], "bytes"),
    ("not a list", "a list"),
]


@pytest.mark.parametrize(("events", "what"), BAD, ids=[w for _, w in BAD])
def test_a_malformed_import_writes_nothing(events: Any, what: str) -> None:
    e = charter.Engine(charter.loads(POLICY), clock=lambda: T + 50)
    with pytest.raises(RunImportError, match=what):
        e.import_run("r1", actor="bot", events=[_ev(0), *events] if isinstance(events, list) else events)
    assert e.store.run_state("run:r1").steps == 0
    assert e.store.history("run:r1") == []


def test_an_import_before_the_runs_last_entry_is_refused() -> None:
    e = charter.Engine(charter.loads(POLICY), clock=lambda: T + 50)
    send = {
        "actor": {"id": "bot"},
        "action": {"target": "web.fetch", "args": {"url": "u"}},
        "context": {"run": "r1"},
    }
    assert e.decide(send).outcome is Outcome.ALLOW
    with pytest.raises(RunImportError, match="time order"):
        e.import_run("r1", actor="bot", events=[_ev(1)])
    assert e.store.run_state("run:r1").steps == 1


def test_charge_is_refused_until_supported() -> None:
    e = charter.Engine(charter.loads(POLICY))
    with pytest.raises(RunImportError, match="charge"):
        e.import_run("r1", actor="bot", events=[_ev(1)], charge=True)


def test_the_trace_records_the_import(tmp_path: Path) -> None:
    from charter.trace import TraceLog

    log = TraceLog(str(tmp_path / "trace.db"))
    e = charter.Engine(charter.loads(POLICY), trace=log, clock=lambda: T + 50)
    done = e.import_run("r1", actor="bot", events=[_ev(1), _ev(2)])
    log.flush()
    rows = repr(list(log.rows()))
    log.close()
    assert "run-import" in rows and done.digest in rows and "c-1" in rows


def test_the_sidecar_imports_and_exports(tmp_path: Path) -> None:
    import time

    now = time.time() - 60  # the sidecar's clock is the system's: events within the run's retention
    for http in serve(tmp_path, POLICY):
        ok = http.post(
            "/v1/runs/r1/history", {"actor": "bot", "events": [_ev(1, base=now, result={"id": "m-1"})]}
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["imported"] == 1
        bad = http.post("/v1/runs/r1/history", {"actor": "bot", "events": [_ev(0, base=now)]})
        assert bad.status_code == 400 and "time order" in bad.text
        got = http.client.get("/v1/runs/r1", headers=http.headers)
        assert got.status_code == 200 and got.json()["steps"] == 1
        req = {"actor": {"id": "bot"}, "action": {"target": "mail.delete", "args": {"message_id": "m-1"}}}
        req["context"] = {"run": "r1"}
        assert http.post("/v1/decide", req).json()["outcome"] == "deny"
        from tests.server.conftest import secret

        from charter.client import Client, SidecarError

        client = Client(str(http.client.base_url), secret("orch"))
        assert client.import_run("r2", actor="bot", events=[_ev(1, base=now)])["imported"] == 1
        assert client.export_run("r2")["steps"] == 1
        with pytest.raises(SidecarError) as err:
            client.import_run("r2", actor="bot", events=[_ev(0, "shell.exec", base=now)])
        assert err.value.status == 400
        with pytest.raises(SidecarError) as err:
            client.export_run("r-typo")  # an unknown run is not an empty one
        assert err.value.status == 404
