"""The decide fast paths answer as Starlette's route does: in-protocol, lean ASGI, one write, Redis bridge."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

import charter
from charter.server import Runtime, Sidecar
from charter.server.proto import CoalescingTransport
from charter.server.runtime import ServeConfig
from charter.state.memory import MemoryStore

from .conftest import auth, req, secret, token_set, write_policy
from .procs import REDIS_HOST, REDIS_PORT, Serve, port_open, redis_cleanup

BODY = json.dumps(req("search")).encode()
TOKEN = secret("orch").encode()


def _raw(body: bytes, *, token: bytes | None = TOKEN, extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    head = b"POST /v1/decide HTTP/" + version + b"\r\nHost: x\r\nContent-Type: application/json\r\n"
    if token is not None:
        head += b"Authorization: Bearer " + token + b"\r\n"
    if b"transfer-encoding" not in extra.lower():
        head += b"Content-Length: " + str(len(body)).encode() + b"\r\n"
    return head + extra + b"\r\n" + body


def _read(sock: socket.socket, n: int = 1) -> list[tuple[int, dict[str, str], bytes]]:
    """n HTTP responses (Content-Length framed) from ``sock``."""
    buf, out = b"", []
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError(buf)
            buf += chunk
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        size = int(headers["content-length"])
        while len(buf) < size:
            buf += sock.recv(65536)
        out.append((int(lines[0].split()[1]), headers, buf[:size]))
        buf = buf[size:]
    return out


def _norm(status: int, headers: dict[str, str], body: bytes) -> tuple[Any, ...]:
    doc = json.loads(body)
    if isinstance(doc, dict):
        for k in ("id", "elapsed_us", "revision"):
            doc.pop(k, None)
        for r in doc.get("rules", ()):
            r.pop("source", None)
        for k in ("approval_id", "approval_expires_at"):  # fresh per decision
            doc.get("obligations", {}).pop(k, None)
    keep = {k: v for k, v in headers.items() if k not in ("date", "content-length", "connection")}
    return status, keep, doc


CASES: list[tuple[str, bytes, dict[str, Any]]] = [
    ("allow", BODY, {}),
    ("deny", json.dumps(req("nothing-grants-this")).encode(), {}),
    ("approval", json.dumps(req("big")).encode(), {}),
    ("no token", BODY, {"token": None}),
    ("unknown token", BODY, {"token": b"not-a-known-token-0123456789"}),
    ("wrong role", BODY, {"token": secret("alice").encode()}),
    ("bad json", b"{nope", {}),
    ("not an object", b"[1, 2]", {}),
    ("malformed field", json.dumps({"actor": {"id": 5}, "action": {"target": "search"}}).encode(), {}),
    ("too large", b"{" + b" " * 70_000 + b"}", {}),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("fast")
    policy = write_policy(tmp / "policy")
    s = Serve(policy, "memory://", tmp, "--poll", "0", "--max-body", str(64 * 1024))
    try:
        s.wait_ready()
        yield s, policy
    finally:
        s.stop()


def test_in_protocol_answers_equal_starlettes_route(served: Any) -> None:
    """Every case through the real server (fast path where it applies) equals Starlette's route."""
    s, policy = served
    rt = Runtime(charter.load(policy), MemoryStore(), None, poll_s=0)
    sidecar = Sidecar(rt, token_set(), max_body=64 * 1024)
    plain = Starlette(routes=sidecar.routes(), lifespan=sidecar.lifespan)  # no fast path at all
    with TestClient(plain) as http, socket.create_connection(("127.0.0.1", s.port)) as sock:
        for name, body, kw in CASES:
            token = kw.get("token", TOKEN)
            headers = {"Content-Type": "application/json"}
            if token is not None:
                headers["Authorization"] = "Bearer " + token.decode()
            want = http.post("/v1/decide", content=body, headers=headers)
            sock.sendall(_raw(body, token=token))
            got = _read(sock)[0]
            assert _norm(*got) == _norm(want.status_code, dict(want.headers), want.content), name
            if name == "too large":  # the stock path may close after a 413; reconnect
                sock.close()
                sock = socket.create_connection(("127.0.0.1", s.port))


def test_keep_alive_pipelining_chunked_http10_and_expect(served: Any) -> None:
    s, _ = served
    with socket.create_connection(("127.0.0.1", s.port)) as sock:
        for _ in range(50):  # many on one connection
            sock.sendall(_raw(BODY))
            status, headers, body = _read(sock)[0]
            assert status == 200 and json.loads(body)["outcome"] == "allow" and "date" in headers
        sock.sendall(_raw(BODY) * 3)  # pipelined: three answers, in order
        ids = [json.loads(b)["id"] for _, _, b in _read(sock, 3)]
        assert len(set(ids)) == 3 and ids == sorted(ids, key=lambda i: int(i.rsplit("-", 1)[1], 16))
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
        sock.sendall(_raw(chunked, extra=b"Transfer-Encoding: chunked\r\n"))
        assert json.loads(_read(sock)[0][2])["outcome"] == "allow"
        sock.sendall(_raw(BODY, extra=b"Expect: 100-continue\r\n"))
        data = b""
        while b"HTTP/1.1 200" not in data or not data.rstrip().endswith(b"}"):
            data += sock.recv(65536)
        assert b'"outcome":"allow"' in data
    with socket.create_connection(("127.0.0.1", s.port)) as sock:
        sock.sendall(_raw(BODY, version=b"1.0"))
        status, headers, body = _read(sock)[0]
        assert status == 200 and headers.get("connection") == "close"
        assert sock.recv(10) == b""  # closed after the answer


def test_lean_asgi_path_equals_starlettes_route(tmp_path: Path) -> None:
    """The same cases through the ASGI app (lean path in front of Starlette) and Starlette alone."""
    policy = write_policy(tmp_path / "p")
    results = []
    for lean in (True, False):
        rt = Runtime(charter.load(policy), MemoryStore(), None, poll_s=0)
        sidecar = Sidecar(rt, token_set(), max_body=64 * 1024)
        app = sidecar.app() if lean else Starlette(routes=sidecar.routes(), lifespan=sidecar.lifespan)
        with TestClient(app) as http:
            got = []
            for _, body, kw in CASES:
                token = kw.get("token", TOKEN)
                headers = {"Authorization": "Bearer " + token.decode()} if token is not None else {}
                r = http.post("/v1/decide", content=body, headers=headers)
                got.append(_norm(r.status_code, dict(r.headers), r.content))
            assert http.get("/v1/decide", headers=auth("orch")).status_code == 405
            results.append(got)
    assert results[0] == results[1]


class _Sink:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


def test_coalescing_transport_joins_headers_and_body_and_never_holds_past_the_loop_turn() -> None:
    async def go() -> None:
        sink = _Sink()
        t = CoalescingTransport(sink, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        t.write(b"{}")
        assert sink.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
        t.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # no body write follows
        assert len(sink.writes) == 1
        await asyncio.sleep(0)
        assert sink.writes[-1] == b"HTTP/1.1 204 No Content\r\n\r\n"
        t.write(b"chunk")  # not a header block: straight through
        assert sink.writes[-1] == b"chunk"
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.close()  # flushes first
        assert sink.writes[-1] == b"HTTP/1.1 200 OK\r\n\r\n" and sink.closed
        assert t.get_extra_info("peername") == ("127.0.0.1", 1)

    asyncio.run(go())


BUDGET_POLICY = """
policy bridge-test
units USD
tool pay { }
permit pay { action call pay }
budget per-workflow {
  scope workflow
  action call pay
  limit 10 USD
}
"""


@pytest.mark.skipif(not port_open(REDIS_HOST, REDIS_PORT), reason="Redis not reachable")
def test_redis_decisions_go_through_redis_asyncio_and_budgets_hold(tmp_path: Path) -> None:
    pytest.importorskip("greenlet")
    from charter.server.aredis import await_only

    prefix = f"charter_bridge_{uuid.uuid4().hex[:10]}"
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "policy.charter").write_text(BUDGET_POLICY, "utf-8")
    cfg = ServeConfig(
        policy_path=str(tmp_path / "p"),
        store_url=f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={prefix}",
        poll_s=0,
    )
    rt = Runtime.from_config(cfg)
    try:
        assert rt.bridge is not None and not rt.bridge.active
        with pytest.raises(RuntimeError, match="outside"):
            await_only(asyncio.sleep(0))
        sent: list[str] = []
        with TestClient(Sidecar(rt, token_set()).app()) as http:
            assert rt.bridge.active
            aio = rt.bridge.client.aio
            real = aio.execute_command

            async def spy(*args: Any, **kw: Any) -> Any:
                sent.append(str(args[0]))
                return await real(*args, **kw)

            aio.execute_command = spy
            body = req("pay", context={"workflow": "w1"}, cost={"USD": 4})
            outcomes = [
                http.post("/v1/decide", json=body, headers=auth("orch")).json()["outcome"] for _ in range(3)
            ]
            assert outcomes == ["allow", "allow", "deny"]  # 4 + 4 <= 10 < 12
            assert "EVALSHA" in sent  # the store's scripts, through redis.asyncio
            assert rt.store.run_state("run:none") is not None  # outside a decision: the sync client
        assert not rt.bridge.active  # lifespan closed the asyncio client
    finally:
        rt.close()
        redis_cleanup(prefix)


@pytest.mark.skipif(not port_open(REDIS_HOST, REDIS_PORT), reason="Redis not reachable")
def test_pipelines_inside_a_decision_go_through_redis_asyncio() -> None:
    pytest.importorskip("greenlet")
    from charter.server.aredis import open_bridged

    prefix = f"charter_bridge_{uuid.uuid4().hex[:10]}"
    opened = open_bridged(f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={prefix}")
    assert opened is not None
    store, bridge = opened

    async def go() -> Any:
        await bridge.start()
        pipelines: list[bool] = []
        real = bridge.client.aio.pipeline

        def spy(*args: Any, **kw: Any) -> Any:
            pipelines.append(True)
            return real(*args, **kw)

        bridge.client.aio.pipeline = spy
        try:
            return await bridge.run(store.run_state, "run:r1"), pipelines
        finally:
            await bridge.stop()

    try:
        state, pipelines = asyncio.run(go())
        assert pipelines and state == store.run_state("run:r1")
    finally:
        store.close()
        redis_cleanup(prefix)
