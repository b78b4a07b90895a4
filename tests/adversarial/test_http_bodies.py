"""Attacks on the sidecar's request bodies as bytes: duplicate keys, lone surrogates, other charsets.

Invariant attacked: a body is decided only when it is one unambiguous JSON text in UTF-8. A key given
twice in one object (a filter that reads the first sees another actor or amount than the engine,
which took the last), a ``\\ud800`` escape (a string no UTF-8 writer can encode: the trace, once
fed one, refused every later write) and a UTF-16 or UTF-32 body (other text than a UTF-8 filter
reads) are refused 400 ``bad-json`` on every route, before anything is decided or written; the
sidecar keeps deciding afterwards. The hostile bodies that already held (huge integers, deep
nesting, invalid UTF-8, a non-object) stay 4xx.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.adversarial.engine_side import Http, http_for
from tests.adversarial.test_human_identity import POLICY, bearer, tokens

import charter
from charter.server import Runtime, create_app
from charter.state.memory import MemoryStore
from charter.trace import TraceLog

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

JSON = {"Content-Type": "application/json"}
SMALL = '{"actor":{"id":"pay-agent"},"action":{"target":"pay","args":{"amount":5.0,"memo":"m"}}}'
#: over 100 in the identity policy: opens an approval (a synchronous trace write)
GATED = SMALL.replace("5.0", "500.0")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "policy.charter").write_text(POLICY)
    rt = Runtime(
        charter.load(tmp_path / "p"),
        MemoryStore(),
        TraceLog(tmp_path / "trace.db"),
        policy_path=str(tmp_path / "p"),
        poll_s=0,
    )
    app = create_app(rt, tokens())
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as c:
        yield c


def _post(c: TestClient, path: str, raw: str | bytes, key: str = "orch") -> Any:
    return c.post(path, content=raw, headers=bearer(key, **JSON))


def _gate(c: TestClient) -> str:
    r = _post(c, "/v1/decide", GATED)
    assert r.status_code == 200 and r.json()["outcome"] == "require_approval", r.text
    return str(r.json()["obligations"]["approval_id"])


DUPLICATES = [
    ("actor", '{"actor":{"id":"pay-agent"},"actor":{"id":"x"},' + SMALL[1 + SMALL.index(",") :], "actor"),
    ("amount", SMALL.replace('"amount":5.0', '"amount":50000.0,"amount":5.0'), "amount"),
    ("approval", SMALL[:-1] + ',"approval":"ap-1","approval":"ap-2"}', "approval"),
    ("idempotency key", SMALL[:-1] + ',"idempotency_key":"a","idempotency_key":"b"}', "idempotency_key"),
]


@pytest.mark.parametrize(("what", "raw", "key"), DUPLICATES, ids=[d[0] for d in DUPLICATES])
def test_a_key_twice_in_a_decide_body_is_refused(client: TestClient, what: str, raw: str, key: str) -> None:
    json.loads(raw)  # valid JSON to Python's own parser (the last one wins there)
    r = _post(client, "/v1/decide", raw)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "bad-json" and repr(key) in r.json()["error"]


def test_a_key_twice_is_refused_on_the_human_routes(client: TestClient) -> None:
    aid = _gate(client)
    r = _post(client, f"/v1/approvals/{aid}/approve", '{"note":"ok","note":"other"}', "alice")
    assert r.status_code == 400 and r.json()["code"] == "bad-json", r.text
    stop = '{"scope":"agent","scope":"global","value":"pay-agent","reason":"r"}'
    r = _post(client, "/v1/stops", stop, "olga")
    assert r.status_code == 400 and r.json()["code"] == "bad-json", r.text
    assert client.get("/v1/stops", headers=bearer("olga")).json()["items"] == []
    got = client.get(f"/v1/approvals/{aid}", headers=bearer("alice")).json()
    assert got["status"] == "pending" and [e["event"] for e in got["history"]] == ["opened"], got


LONE = ["\\ud800", "\\uDFFF", "\\udc00\\ud800", "x\\uD83D", "\\uDE00y"]


@pytest.mark.parametrize("escape", LONE)
def test_a_lone_surrogate_is_refused_and_the_trace_keeps_working(client: TestClient, escape: str) -> None:
    for raw in (
        SMALL.replace('"m"', f'"{escape}"'),
        SMALL.replace('"memo"', f'"{escape}"'),
        GATED.replace('"m"', f'"{escape}"'),
    ):
        r = _post(client, "/v1/decide", raw)
        assert r.status_code == 400 and r.json()["code"] == "bad-json", r.text
    aid = _gate(client)  # the trace still takes records (a gate opening writes one at once)
    r = _post(client, f"/v1/approvals/{aid}/approve", '{"note":"' + escape + '"}', "alice")
    assert r.status_code == 400 and r.json()["code"] == "bad-json", r.text
    r = _post(client, "/v1/stops", '{"scope":"agent","value":"a' + escape + '","reason":"r"}', "olga")
    assert r.status_code == 400, r.text
    _gate(client)


def test_a_paired_surrogate_escape_is_text(client: TestClient) -> None:
    r = _post(client, "/v1/decide", SMALL.replace('"m"', '"\\ud83d\\ude00 \\\\ud800"'))
    assert r.status_code == 200 and r.json()["outcome"] == "allow", r.text
    _gate(client)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-8-sig"])
def test_a_body_in_another_encoding_is_refused(client: TestClient, encoding: str) -> None:
    r = _post(client, "/v1/decide", SMALL.encode(encoding))
    assert r.status_code == 400 and r.json()["code"] == "bad-json", r.text


HELD = [
    ("4,301 digits", SMALL.replace("5.0", "1" * 4301), 400),
    ("4,000 digits", SMALL.replace("5.0", "1" * 4000), 422),
    ("nesting 100,000 deep", "[" * 100_000 + "]" * 100_000, 400),
    ("invalid UTF-8", SMALL.encode().replace(b'"m"', b'"\xff\xfe"'), 400),
    ("encoded surrogate bytes", SMALL.encode().replace(b'"m"', b'"\xed\xa0\x80"'), 400),
    ("a list", "[]", 422),
    ("a number", "1", 422),
    ("empty", "", 400),
    ("NaN", SMALL.replace("5.0", "NaN"), 422),
]


@pytest.mark.parametrize(("what", "raw", "status"), HELD, ids=[h[0] for h in HELD])
def test_hostile_bodies_are_4xx_never_5xx(client: TestClient, what: str, raw: Any, status: int) -> None:
    r = _post(client, "/v1/decide", raw)
    assert r.status_code == status, (what, r.text[:300])


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    yield from http_for(tmp_path_factory)


@pytest.mark.parametrize(
    "raw",
    [
        '{"actor":{"id":"payments-agent"},"actor":{"id":"x"},"action":{"target":"search"}}',
        '{"actor":{"id":"payments-agent"},"action":{"target":"search","args":{"q":"\\ud800"}}}',
        '{"actor":{"id":"payments-agent"},"action":{"target":"search"}}'.encode("utf-16"),
    ],
    ids=["duplicate", "surrogate", "utf-16"],
)
def test_http_the_protocol_fast_path_refuses_them_too(http: Http, raw: str | bytes) -> None:
    r = http.client.post("/v1/decide", content=raw, headers=http.headers)
    assert r.status_code == 400 and r.json()["code"] == "bad-json", r.text
    ok = http.post("/v1/decide", {"actor": {"id": "payments-agent"}, "action": {"target": "search"}})
    assert ok.status_code == 200 and ok.json()["outcome"] == "allow", ok.text
