"""Attacks on the inputs around runs: run ids, exporting an unknown run, imported times, secrets
in an export (issue 18, the holes left open around run grants and history).

Invariants attacked:
- one rule for run ids (docs/security.md, "Request limits"), enforced at every entry --
  ``context.run`` (both validator tiers), ``begin_run``, ``narrow_run``, ``import_run``,
  ``export_run`` and the sidecar's run routes -- with an error that states the rule;
- exporting a run the store has nothing of is an error (UnknownRun, 404), never an empty history
  an orchestrator would resume from;
- an imported event's ``at`` is a real, recent time of the engine's clock: never one the store
  drops at once, never one from the future;
- an export never gives a value the policy marks ``secret``; a re-import whose ``where`` reads
  it fails closed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from tests.adversarial.engine_side import BACKENDS, engine_on
from tests.server.conftest import auth
from tests.server.test_runs import http as _http  # noqa: F401  (the fixture)

import charter
from charter.engine.request import Request
from charter.engine.runimport import MAX_SKEW_S
from charter.engine.stateful import RUN_TTL_S
from charter.engine.validate import check_run_id, run_id_ok, validate_request
from charter.enums import Outcome
from charter.errors import RequestError, RunImportError, UnknownRun

POLICY = """
policy run-inputs
tool mail.send {
  arg to: string
  arg memo: string secret
  result id: string
  result pin: string secret
}
tool web.fetch { arg url: string }
permit work { action call mail.send, web.fetch  reason "ok" }
forbid no-pin-out {
  action call mail.send
  after call mail.send where earlier.result.pin == args.to
  reason "A PIN a call returned never leaves in mail."
}
"""
T = 1_767_225_600.0

BAD_RUN_IDS = [
    "",
    " ",
    "   ",
    "\t",
    " r1",
    "r1 ",
    "a/b",
    "/",
    "r1/../r2",
    ".",
    "..",
    "a\nb",
    "r1\r\nforged: line",
    "a\x00b",
    "\x1b[31mred",
    "a\x7fb",
    "a\x85b",  # C1 control
    "a\u202eb",  # right-to-left override (bidi: hides text in a terminal)
    "a\u200bb",  # zero-width space
    "a\u2028b",  # line separator
    "a\u00a0",  # no-break space at the end
    "\ud800",  # a lone surrogate
    "x" * 257,
]
GOOD_RUN_IDS = ["r1", "run-117 payments-agent", "r.1", "...", ".hidden", "a:b@c", "ü-run", "x" * 256]


def _ids(xs: list[str]) -> list[str]:
    return [repr(x)[:20] for x in xs]


def _req(run: Any, target: str = "web.fetch", **args: Any) -> dict[str, Any]:
    return {
        "actor": {"id": "bot"},
        "action": {"target": target, "args": args or {"url": "u"}},
        "context": {"run": run},
    }


def _ev(i: int, at: float, **extra: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {"call_id": f"c-{i}", "target": "web.fetch", "args": {"url": "u"}, "at": at}
    ev.update(extra)
    return ev


def _engine(t: float = T) -> charter.Engine:
    return charter.Engine(charter.loads(POLICY), clock=lambda: t)


# ---- 1. one rule for run ids, at every entry ------------------------------------------------------


@pytest.mark.parametrize("run", BAD_RUN_IDS, ids=_ids(BAD_RUN_IDS))
def test_a_bad_run_id_is_refused_at_every_entry(run: str) -> None:
    e = _engine()
    assert not run_id_ok(run)
    # the shape tier says "not mine", the model tier words it (pydantic itself refuses a lone
    # surrogate and a text over 256 characters)
    with pytest.raises(RequestError, match=r"a run id is 1 to 256 printable|context\.run") as err:
        e.decide(_req(run))
    assert err.value.field == "context.run"
    try:  # a charter.Request model: its own bounds (the length), then the model tier's rule
        model = Request.model_validate(_req(run))
    except ValidationError:
        assert len(run) > 256 or run == "\ud800"
    else:
        with pytest.raises(RequestError, match="a run id is"):
            validate_request(model)
    with pytest.raises(RequestError, match="a run id is"):
        e.begin_run(run, actor="bot")
    with pytest.raises(RequestError, match="a run id is"):
        e.narrow_run(run)
    with pytest.raises(RunImportError, match="a run id is"):
        e.import_run(run, actor="bot", events=[_ev(1, T)])
    with pytest.raises(RequestError, match="a run id is"):
        e.export_run(run)
    # nothing of any of them reached the store
    assert e.store.run_state(f"run:{run}").steps == 0
    assert e.store.history(f"run:{run}") == []


#: (bytes too: the model tier no longer turns b"r1" into "r1"; see test_identifiers.py)
NOT_TEXT_RUN_IDS: list[Any] = [
    7,
    1.5,
    float("nan"),
    True,
    None,
    ["r1"],
    {"id": "r1"},
    b"r1",
    bytearray(b"r1"),
]


@pytest.mark.parametrize("run", NOT_TEXT_RUN_IDS, ids=[repr(x) for x in NOT_TEXT_RUN_IDS])
def test_a_run_id_that_is_not_a_text_is_refused_at_every_entry(run: Any) -> None:
    """A number, a boolean, a list or bytes where a run id goes: a RequestError (a charter.Error)
    naming the field, never a TypeError from deeper down and nothing stored."""
    e = _engine()
    if run is not None:  # (no run at all is what context.run = null says)
        with pytest.raises(RequestError) as err:
            e.decide(_req(run))
        assert err.value.field == "context.run"
    with pytest.raises(RequestError, match="a run id is a text"):
        e.begin_run(run, actor="bot", grants=[])
    with pytest.raises(RequestError, match="a run id is a text"):
        e.narrow_run(run)
    with pytest.raises(RunImportError, match="a run id is a text"):
        e.import_run(run, actor="bot", events=[_ev(1, T)])
    with pytest.raises(RequestError, match="a run id is a text"):
        e.export_run(run)
    assert issubclass(RequestError, charter.Error) and issubclass(RunImportError, charter.Error)


@pytest.mark.parametrize("run", GOOD_RUN_IDS, ids=_ids(GOOD_RUN_IDS))
def test_a_good_run_id_works_everywhere(run: str) -> None:
    e = _engine(T + 10)
    assert check_run_id(run) == run
    e.begin_run(run, actor="bot")
    assert e.import_run(run, actor="bot", events=[_ev(1, T)]).imported == 1
    assert e.decide(_req(run)).outcome is Outcome.ALLOW
    assert e.export_run(run)["steps"] == 2


def test_the_error_escapes_what_it_quotes() -> None:
    with pytest.raises(RequestError) as err:
        check_run_id("r1\nforged: line\x1b[2J" + "x" * 100)
    msg = str(err.value)
    assert "\n" not in msg and "\x1b" not in msg and msg.endswith("...)")
    with pytest.raises(RequestError, match="a text, not int"):
        check_run_id(7)


def test_the_shape_tier_accepts_exactly_what_the_model_tier_accepts() -> None:
    from charter.engine.validate import _by_model, _common_shape

    for run in [*BAD_RUN_IDS, *GOOD_RUN_IDS]:
        fast = _common_shape(_req(run))
        try:
            slow = _by_model(_req(run))
        except RequestError:
            assert fast is None, repr(run)
        else:
            assert fast is not None and fast.run == slow.run == run


def test_a_run_id_is_as_long_as_any_other_id() -> None:
    # context.run has always been at most 256 characters: a run begun with a longer id (begin_run
    # allowed 1,024) could never be decided in
    e = _engine()
    with pytest.raises(RequestError, match="1 to 256"):
        e.begin_run("r" * 257, actor="bot")


# ---- 2. exporting an unknown run -------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def eng(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[charter.Engine, Any]]:
    yield from engine_on(request.param, tmp_path, POLICY)


def test_exporting_an_unknown_run_is_an_error(eng: tuple[charter.Engine, Any]) -> None:
    e, _ = eng
    with pytest.raises(UnknownRun, match="no run 'r-typo'") as err:
        e.export_run("r-typo")
    assert isinstance(err.value, charter.Error) and isinstance(err.value, LookupError)
    assert err.value.run == "r-typo"
    # a run is known once it has a step, a grant or a label
    e.decide(_req("r-step"))
    assert e.export_run("r-step")["steps"] == 1
    e.begin_run("r-labels", actor="bot", labels=["user"])
    assert e.export_run("r-labels")["labels"] == ["user"]


# ---- 3. bounded times in an import -----------------------------------------------------------------

NOW = T + 30 * 86400.0
BAD_AT: list[Any] = [
    -1e308,
    -1.0,
    0,
    NOW - RUN_TTL_S - 1,  # dropped by the store at once
    NOW + MAX_SKEW_S + 1,
    1e12,
    1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    "1767225600",
    None,
    [NOW],
]


@pytest.mark.parametrize("at", BAD_AT, ids=[repr(a)[:24] for a in BAD_AT])
def test_an_import_time_outside_the_runs_life_is_refused(at: Any) -> None:
    e = _engine(NOW)
    with pytest.raises(RunImportError, match=r"events\[1\]: at: |not JSON"):
        e.import_run("r1", actor="bot", events=[_ev(0, NOW - 10), _ev(1, at)])
    assert e.store.run_state("run:r1").steps == 0  # all or nothing


@pytest.mark.parametrize("at", [NOW - RUN_TTL_S + 60, NOW - 1, NOW, NOW + MAX_SKEW_S])
def test_an_import_time_inside_the_runs_life_is_kept(at: float) -> None:
    e = _engine(NOW)
    assert e.import_run("r1", actor="bot", events=[_ev(1, at)]).imported == 1
    assert e.store.run_state("run:r1").steps == 1  # kept, not dropped by the store
    assert e.decide(_req("r1")).outcome is Outcome.ALLOW
    assert e.store.run_state("run:r1").steps == 2


def test_an_import_on_every_store_keeps_what_it_reports(eng: tuple[charter.Engine, Any]) -> None:
    e, clock = eng
    with pytest.raises(RunImportError, match="at: "):
        e.import_run("r1", actor="bot", events=[_ev(1, -1e308)])
    done = e.import_run("r1", actor="bot", events=[_ev(1, clock.t - 5), _ev(2, clock.t)])
    assert done.imported == 2 and e.store.run_state("run:r1").steps == 2


# ---- 4. secrets in an export -----------------------------------------------------------------------


def _mail(i: int, at: float, to: str, pin: str) -> dict[str, Any]:
    return {
        "call_id": f"m-{i}",
        "target": "mail.send",
        "args": {"to": to, "memo": "the PIN is " + pin},
        "result": {"id": f"id-{i}", "pin": pin},
        "at": at,
    }


def test_an_export_never_gives_a_secret(eng: tuple[charter.Engine, Any]) -> None:
    e, clock = eng
    # one imported, one decided and settled here
    e.import_run("r1", actor="bot", events=[_mail(1, clock.t, "a@x", "4711")])
    d = e.decide(_req("r1", "mail.send", to="b@x", memo="the PIN is 0815"))
    assert d.outcome is Outcome.ALLOW
    e.settle(d.id, result={"id": "id-2", "pin": "0815"})
    out = e.export_run("r1")
    text = repr(out)
    assert "4711" not in text and "0815" not in text
    assert [x["redacted"] for x in out["events"]] == [["args.memo", "result.pin"]] * 2
    assert out["events"][0]["result"] == {"id": "id-1"} and out["events"][0]["args"] == {"to": "a@x"}
    # the export re-imports elsewhere; a `where` that reads the secret fails closed there
    other = _engine(clock.t + 1)
    assert other.import_run("r1", actor="bot", events=out["events"]).imported == 2
    again = other.decide(_req("r1", "mail.send", to="4711", memo="m"))
    assert again.outcome is Outcome.DENY
    assert "pin" in again.failures[0].error
    # on this engine, which holds the value, the rule reads it
    assert e.decide(_req("r1", "mail.send", to="4711", memo="m")).rules[0].id == "no-pin-out"


def test_redacted_must_be_a_list_of_paths() -> None:
    e = _engine()
    with pytest.raises(RunImportError, match="redacted"):
        e.import_run("r1", actor="bot", events=[_ev(1, T, redacted="result.pin")])


# ---- the sidecar --------------------------------------------------------------------------------------

H = {**auth("orch"), "content-type": "application/json"}
PATH_IDS = ["%0A", "%00", "%20", "%20r1", "r1%20", "%E2%80%AE", "%1B%5B2J", "x" * 257]


@pytest.mark.parametrize("seg", PATH_IDS, ids=[s[:12] for s in PATH_IDS])
def test_the_run_routes_refuse_a_bad_run_id_in_the_path(_http: Any, seg: str) -> None:  # noqa: F811
    for method, path, body in (
        ("GET", f"/v1/runs/{seg}", None),
        ("POST", f"/v1/runs/{seg}/narrow", {}),
        ("POST", f"/v1/runs/{seg}/history", {"actor": "a", "events": []}),
    ):
        r = _http.request(method, path, json=body, headers=H)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["field"] == "run" and "a run id is" in r.json()["error"]


@pytest.mark.parametrize("run", ["", " ", "a/b", "..", "a\nb", "a\u202eb", "x" * 257])
def test_the_sidecar_refuses_a_bad_run_id_in_a_body(_http: Any, run: str) -> None:  # noqa: F811
    r = _http.post("/v1/runs", json={"run": run, "actor": "assistant"}, headers=H)
    assert r.status_code == 422, r.text
    req = {"actor": {"id": "assistant"}, "action": {"target": "mail.send", "args": {"to": ["a"]}}}
    req["context"] = {"run": run}
    r = _http.post("/v1/decide", json=req, headers=H)
    assert r.status_code == 422 and r.json()["field"] == "context.run", r.text


def test_the_sidecar_exports_an_unknown_run_as_404(_http: Any) -> None:  # noqa: F811
    r = _http.get("/v1/runs/r-typo", headers=H)
    assert r.status_code == 404 and r.json()["code"] == "unknown-run", r.text
    assert _http.post("/v1/runs", json={"run": "r-known", "actor": "a"}, headers=H).status_code == 201
    assert _http.post("/v1/runs/r-known/narrow", json={}, headers=H).status_code == 200
