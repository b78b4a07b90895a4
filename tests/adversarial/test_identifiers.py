"""Attacks on the identifiers a request or a run entry carries (docs/security.md, "Request limits").

Invariant attacked: one rule for every identifier -- an exact ``str`` of 1 to 256 printable
characters (``str.isprintable``: no Unicode category C* or Z* but the ASCII space), no leading or
trailing space (128 characters for a trace id) -- in both validator tiers and at every entry:
``Engine.decide`` (a mapping or a ``charter.Request``), ``begin_run``, ``import_run``, ``settle``
and the sidecar. An id goes into store keys, trace lines, CLI output and HTTP paths: a NUL, a
newline or a bidi override would forge or hide text in an audit log; bytes or a ``str`` subclass
(which can redefine equality) would give a policy an identity by lax coercion. Free text (argument
values, attribute values, a signal's note) is not an identifier and keeps its own rules.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient
from tests.server.conftest import auth, token_set, write_policy

import charter
from charter.engine import validate as v
from charter.engine.request import Request, id_ok
from charter.engine.validate import _by_model, _common_shape, validate_request
from charter.errors import RequestError, RunImportError, SettleError

POLICY = """
policy ids
tool web.fetch { arg url: string }
permit work { action call web.fetch  reason "ok" }
"""
T = 1_767_225_600.0


class _Str(str):
    """A str subclass that equals everything: an identity a policy must never see."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash(str(self))


#: the attacks: not a str (bytes and friends, a subclass), control, format, separator and bidi
#: characters, surrounding spaces, bad lengths
BAD: list[Any] = [
    b"a1",
    bytearray(b"a1"),
    memoryview(b"a1"),
    _Str("a1"),
    "",
    " ",
    " a1",
    "a1 ",
    "a\x00",
    "a\x00\u202e",
    "t\n",
    "a\r\nforged: line",
    "a\t",
    "\x1b[2J",
    "a\x7f",
    "a\x85",  # C1 control
    "a\u202eb",  # right-to-left override
    "a\u200bb",  # zero-width space
    "a\u2028b",  # line separator
    "a\u00a0",  # no-break space
    "\ud800",  # a lone surrogate
    "x" * 257,
]
#: valid ids (an inner space is valid; any printable letter is)
GOOD = ["a1", "a b", "payments-agent", "kb.read", "ü-agent ✓", "x" * 256]


def _base() -> dict[str, Any]:
    return {"actor": {"id": "bot"}, "action": {"target": "web.fetch", "args": {"url": "u"}}}


def _put(req: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """``req`` with ``value`` as the identifier at ``field``."""
    if field == "actor.id":
        req["actor"]["id"] = value
    elif field in ("actor.roles", "actor.chain"):
        req["actor"][field.split(".")[1]] = [value]
    elif field == "actor.human":
        req["actor"]["human"] = value
    elif field == "action.target":
        req["action"]["target"] = value
    elif field == "action.labels":
        req["action"]["labels"] = {"url": [value]}
    elif field == "action.call_id":
        req["action"]["call_id"] = value
    elif field.startswith("context."):
        req["context"] = {field.split(".")[1]: value}
    elif field.startswith("signals."):
        sig = {"source": "scanner", "kind": "pii"}
        sig[field.split(".")[1]] = value
        req["signals"] = [sig]
    else:
        req[field] = value
    return req


FIELDS = [
    "actor.id",
    "actor.roles",
    "actor.chain",
    "actor.human",
    "action.target",
    "action.labels",
    "action.call_id",
    "context.workflow",
    "context.tenant",
    "context.env",
    "approval",
    "idempotency_key",
    "trace_id",
    "signals.source",
    "signals.kind",
]
#: the field a RequestError names (pydantic's location: list items by index)
NAMED = {
    "actor.roles": "actor.roles.0",
    "actor.chain": "actor.chain.0",
    "action.labels": "action.labels.url.0",
    "signals.source": "signals.0.source",
    "signals.kind": "signals.0.kind",
}


def _engine() -> charter.Engine:
    return charter.Engine(charter.loads(POLICY), clock=lambda: T)


def _label(x: Any) -> str:
    return type(x).__name__ if not isinstance(x, str) or type(x) is not str else repr(x)[:16]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("bad", BAD, ids=[_label(x) for x in BAD])
def test_a_bad_identifier_is_refused_in_every_field(field: str, bad: Any) -> None:
    e = _engine()
    req = _put(_base(), field, bad)
    with pytest.raises(RequestError) as err:
        e.decide(copy.copy(req))
    assert err.value.field == NAMED.get(field, field), str(err.value)
    msg = str(err.value)
    # the message states the rule (or that an id is a text) and quotes the value escaped
    assert "an identifier is" in msg or "at most" in msg, msg
    assert not any(c in msg for c in "\x00\n\r\x1b\u202e\u200b\u2028\x85"), msg
    # both tiers: the shape tier says "not mine", the model tier refuses
    assert _common_shape(req) is None
    with pytest.raises(RequestError):
        _by_model(req)
    # a charter.Request model refuses it too (no coercion of bytes, no subclass)
    with pytest.raises(ValidationError):
        Request.model_validate(req)
    assert e.store.run_state("run:-").steps == 0


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("good", GOOD, ids=[repr(x)[:16] for x in GOOD])
def test_a_good_identifier_is_taken_by_both_tiers_in_every_field(field: str, good: str) -> None:
    if field == "trace_id" and len(good) > 128:
        good = good[:128]
    req = _put(_base(), field, good)
    fast, slow = _common_shape(req), _by_model(req)
    assert fast is not None and fast.to_dict() == slow.to_dict()
    assert validate_request(Request.model_validate(req)).to_dict() == slow.to_dict()
    _engine().decide(req)


def test_the_bytes_a_model_used_to_coerce_give_no_identity() -> None:
    # before: actor b"a1" was decided as actor "a1", context.run b"r1" as run r1, roles [b"admin"]
    # granted role admin
    e = _engine()
    for req, field in (
        ({"actor": {"id": b"a1"}, "action": {"target": "web.fetch"}}, "actor.id"),
        ({**_base(), "context": {"run": b"r1"}}, "context.run"),
        ({"actor": {"id": "a1", "roles": [b"admin"]}, "action": {"target": "web.fetch"}}, "actor.roles.0"),
    ):
        with pytest.raises(RequestError) as err:
            e.decide(req)
        assert err.value.field == field and "not bytes" in str(err.value)
    assert e.store.run_state("run:r1").steps == 0


def test_a_trace_id_is_at_most_128_characters() -> None:
    assert validate_request(_put(_base(), "trace_id", "f" * 128)).trace_id == "f" * 128
    with pytest.raises(RequestError, match="1 to 128 printable"):
        validate_request(_put(_base(), "trace_id", "f" * 129))


def test_free_text_keeps_its_own_rules() -> None:
    # argument values, attribute values and a signal's note are not identifiers
    req = _base()
    req["action"]["args"] = {"url": "a\x00\u202e\n "}
    req["actor"]["attributes"] = {"bio": " \t\u2028"}
    req["signals"] = [{"source": "s", "kind": "k", "note": "line 1\nline 2\u202e"}]
    fast, slow = _common_shape(req), _by_model(req)
    assert fast is not None and fast.to_dict() == slow.to_dict()


def test_the_shape_tier_remembers_only_valid_exact_texts() -> None:
    for bad in BAD:
        _common_shape(_put(_base(), "actor.id", bad))
    assert all(x.__class__ is str and id_ok(x) for x in v._IDS)
    # a subclass equal to a remembered id is still refused (it is never looked up)
    assert "a1" in v._IDS or _common_shape(_put(_base(), "actor.id", "a1")) is not None
    assert _common_shape(_put(_base(), "actor.id", _Str("a1"))) is None
    # bounded: full, it is emptied, and a valid id is still taken
    for i in range(v._IDS_MAX + 10):
        assert _common_shape(_put(_base(), "actor.id", f"agent-{i}")) is not None
    assert len(v._IDS) <= v._IDS_MAX
    assert _common_shape(_put(_base(), "actor.id", "agent-0")) is not None


# ---- run entries ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD, ids=[_label(x) for x in BAD])
def test_run_entries_refuse_a_bad_actor_or_label(bad: Any) -> None:
    e = _engine()
    if bad != "" or type(bad) is not str:  # begin_run's actor "": grants for any actor of the run
        with pytest.raises(RequestError) as err:
            e.begin_run("r1", actor=bad)
        assert err.value.field == "actor"
    with pytest.raises(RequestError) as err:
        e.begin_run("r1", actor="bot", labels=[bad])
    assert err.value.field == "labels"
    with pytest.raises(RunImportError, match="actor"):
        e.import_run("r1", actor=bad, events=[])
    ev = {"call_id": "c1", "target": "web.fetch", "args": {"url": "u"}, "at": T, "labels": [bad]}
    with pytest.raises(RunImportError, match=r"labels|not JSON"):  # (bytes: the JSON check first)
        e.import_run("r1", actor="bot", events=[ev])
    d = e.decide({**_base(), "context": {"run": "r1"}})
    with pytest.raises(SettleError) as err:
        e.settle(d.id, labels=[bad])
    assert err.value.field == "labels"
    # nothing was stored: the run has no grants, no labels, only the one decided step
    state = e.store.run_state("run:r1")
    assert not state.grants and not state.labels


def test_begin_run_takes_an_actor_as_long_as_any_other_id() -> None:
    # begin_run took a 1,024-character actor; every other id is at most 256 characters
    e = _engine()
    with pytest.raises(RequestError, match="1 to 256 printable"):
        e.begin_run("r1", actor="a" * 257)
    assert e.begin_run("r1", actor="a" * 256).actor == "a" * 256
    assert e.begin_run("r2").actor == ""  # no actor: grants for any actor of the run


# ---- the sidecar ----------------------------------------------------------------------------------

H = {**auth("orch"), "content-type": "application/json"}
#: what a JSON body (UTF-8) can carry of the attacks
JSON_BAD = [x for x in BAD if type(x) is str and x != "\ud800"]


@pytest.fixture
def http(tmp_path: Path) -> Iterator[TestClient]:
    from charter.server import Runtime, create_app
    from charter.state.memory import MemoryStore
    from charter.trace import TraceLog

    root = write_policy(tmp_path / "policy", POLICY)
    rt = Runtime(
        charter.load(root), MemoryStore(), TraceLog(tmp_path / "trace.db"), policy_path=str(root), poll_s=0
    )
    with TestClient(create_app(rt, token_set(), max_body=64 * 1024, time_limit_s=2.0)) as c:
        yield c


@pytest.mark.parametrize("bad", JSON_BAD, ids=[repr(x)[:16] for x in JSON_BAD])
def test_the_sidecar_refuses_a_bad_identifier_in_every_field(http: TestClient, bad: str) -> None:
    for field in FIELDS:
        r = http.post("/v1/decide", json=_put(_base(), field, bad), headers=H)
        assert r.status_code == 422, (field, r.text)
        assert r.json()["field"] == NAMED.get(field, field), (field, r.text)
    if bad:
        r = http.post("/v1/runs", json={"run": "r1", "actor": bad}, headers=H)
        assert r.status_code == 422 and r.json()["field"] == "actor", r.text
    r = http.post("/v1/runs", json={"run": "r1", "actor": "bot", "labels": [bad]}, headers=H)
    assert r.status_code == 422 and r.json()["field"] == "labels", r.text
    d = http.post("/v1/decide", json={**_base(), "context": {"run": "r1"}}, headers=H).json()
    r = http.post("/v1/settle", json={"decision_id": d["id"], "labels": [bad]}, headers=H)
    assert r.status_code == 422 and r.json()["field"] == "labels", r.text
