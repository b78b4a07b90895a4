"""Attacks on who answers a gate: self-approval, the same approver twice, forged identities, the wrong
role, replays, CSRF, hostile text in the inbox, dead or forged sessions, and the command line's
self-asserted names. Each test states the invariant it attacks (docs/humans.md, docs/security.md)."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

import charter
from charter.server import Runtime, TokenSet, create_app
from charter.server.auth import Principal, hash_token
from charter.server.inbox.session import COOKIE, SessionKeys, Sessions
from charter.state.memory import MemoryStore
from charter.trace import TraceLog
from charter.trace.story import story

POLICY = """
policy identity
units USD
group treasury { members alice, bob, carol }
group operators { members olga, peter }
tool pay { arg amount: double  arg memo: string }
stops {
  operators operators
  resume requires 2
}
permit pay { action call pay }
require approval big {
  action call pay
  when args.amount > 100.0
  approvers treasury
  quorum 2
  redeem within 10m
  reason "Two of treasury above 100."
}
"""
PEOPLE = {
    "orch": ("orchestrator-1", "orchestrator"),
    "alice": ("alice", "approver"),
    "bob": ("bob", "approver"),
    "carol": ("carol", "approver"),
    "olga": ("olga", "operator"),
    "peter": ("peter", "operator"),
    "root": ("root", "admin"),
}


def secret(key: str) -> str:
    return f"identity-test-token-{key}-0123456789"


def tokens(keys: Any = PEOPLE) -> TokenSet:
    return TokenSet(
        [(hash_token(secret(k)), Principal(PEOPLE[k][0], frozenset({PEOPLE[k][1]}))) for k in keys]
    )


def bearer(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret(key)}", **extra}


class Clock:
    def __init__(self) -> None:
        self.t = 1_790_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "policy.charter").write_text(POLICY)
    return tmp_path / "p"


@pytest.fixture
def rt(policy_dir: Path, tmp_path: Path) -> Runtime:
    return Runtime(
        charter.load(policy_dir),
        MemoryStore(),
        TraceLog(tmp_path / "trace.db"),
        policy_path=str(policy_dir),
        poll_s=0,
    )


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, tokens()), base_url="http://testserver") as c:
        yield c


def gate(c: TestClient, amount: float = 500.0, human: str | None = None, memo: str = "invoice") -> str:
    actor: dict[str, Any] = {"id": "pay-agent"}
    if human:
        actor["human"] = human
    body = {
        "actor": actor,
        "action": {"target": "pay", "args": {"amount": amount, "memo": memo}},
        "context": {"run": "r1"},
    }
    d = c.post("/v1/decide", json=body, headers=bearer("orch")).json()
    assert d["outcome"] == "require_approval", d
    return str(d["obligations"]["approval_id"])


def resubmit(c: TestClient, aid: str, amount: float = 500.0) -> dict[str, Any]:
    body = {
        "actor": {"id": "pay-agent"},
        "action": {"target": "pay", "args": {"amount": amount, "memo": "invoice"}},
        "context": {"run": "r1"},
        "approval": aid,
    }
    return dict(c.post("/v1/decide", json=body, headers=bearer("orch")).json())


def sign_in(c: TestClient, key: str) -> str:
    r = c.post("/ui/login", data={"token": secret(key)}, follow_redirects=False)
    assert r.status_code == 303
    return str(c.cookies.get(COOKIE))


def csrf_of(c: TestClient, path: str) -> str:
    page = c.get(path).text
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


# ---- self-approval -------------------------------------------------------------------------------------
def test_the_launching_human_cannot_approve_on_any_channel(client: TestClient, rt: Runtime) -> None:
    """Invariant: separation of duties holds whichever channel the requester uses."""
    aid = gate(client, human="alice")
    r = client.post(f"/v1/approvals/{aid}/approve", json={"note": ""}, headers=bearer("alice"))
    assert r.status_code == 403 and r.json()["code"] == "self-approval"
    sign_in(client, "alice")
    token = csrf_of(client, f"/ui/approvals/{aid}")
    r = client.post(f"/ui/approvals/{aid}/approve", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 403 and "separation of duties" in r.text
    assert rt.engine.approvals.get(aid)["approvals"] == []


# ---- the same approver twice --------------------------------------------------------------------------
def test_one_person_counts_once_across_channels(client: TestClient, rt: Runtime) -> None:
    """Invariant: a quorum of 2 needs two names; the same token through the API, the CLI header and
    the inbox is one person."""
    aid = gate(client)
    assert client.post(f"/v1/approvals/{aid}/approve", json={}, headers=bearer("alice")).status_code == 200
    again = client.post(
        f"/v1/approvals/{aid}/approve", json={}, headers=bearer("alice", **{"X-Charter-Client": "cli"})
    )
    assert again.status_code == 409 and again.json()["code"] == "duplicate"
    sign_in(client, "alice")
    token = csrf_of(client, f"/ui/approvals/{aid}")
    r = client.post(f"/ui/approvals/{aid}/approve", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 409 and "counts once" in r.text
    doc = rt.engine.approvals.get(aid)
    assert doc["status"] == "pending" and [a["by"] for a in doc["approvals"]] == ["alice"]
    assert resubmit(client, aid)["outcome"] == "require_approval"


# ---- forged identity ---------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["by", "who", "as", "name", "approver"])
def test_a_name_in_the_body_is_refused(client: TestClient, field: str) -> None:
    """Invariant: who acted is the token's name, never a field a caller sends."""
    aid = gate(client)
    r = client.post(f"/v1/approvals/{aid}/approve", json={"note": "", field: "bob"}, headers=bearer("alice"))
    assert r.status_code == 422


def test_the_client_header_changes_only_the_channel_label(client: TestClient, rt: Runtime) -> None:
    """Invariant: X-Charter-Client picks between 'cli' and 'http'; the name is still the token's."""
    aid = gate(client)
    client.post(
        f"/v1/approvals/{aid}/approve", json={}, headers=bearer("alice", **{"X-Charter-Client": "cli"})
    )
    client.post(
        f"/v1/approvals/{aid}/approve", json={}, headers=bearer("bob", **{"X-Charter-Client": "store-admin"})
    )
    got = [(a["by"], a["via"]) for a in rt.engine.approvals.get(aid)["approvals"]]
    assert got == [("alice", "cli"), ("bob", "http")]


def test_a_tampered_session_cookie_is_no_session(client: TestClient) -> None:
    """Invariant: a session names whom its signature says; editing the payload or the MAC ends it."""
    cookie = sign_in(client, "alice")
    payload, mac = cookie.split(".")
    import base64

    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data[0] = "bob"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode() + "." + mac
    for value in (forged, payload + "." + mac[:-2] + "AA", "x", "a.b.c", "." * 3000, cookie + "\x00"):
        client.cookies.set(COOKIE, value)
        r = client.get("/ui/approvals", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/ui/login"


def test_a_session_ends_when_its_token_is_removed(rt: Runtime) -> None:
    """Invariant: removing a token from the tokens file ends its inbox sessions at once."""
    with TestClient(create_app(rt, tokens()), base_url="http://testserver") as c:
        cookie = sign_in(c, "alice")
    without_alice = tokens([k for k in PEOPLE if k != "alice"])
    with TestClient(create_app(rt, without_alice), base_url="http://testserver") as c:
        c.cookies.set(COOKIE, cookie)
        assert c.get("/ui/approvals", follow_redirects=False).status_code == 303


# ---- the wrong role ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["orch", "olga"])
def test_roles_that_may_not_answer_are_refused(client: TestClient, rt: Runtime, key: str) -> None:
    """Invariant: only approvers (and admins) answer; a forged form post from another role is 403."""
    aid = gate(client)
    assert client.post(f"/v1/approvals/{aid}/approve", json={}, headers=bearer(key)).status_code == 403
    sign_in(client, key)
    home = client.get("/ui/approvals" if key == "orch" else "/ui/runs")
    token = re.search(r'name="csrf" value="([^"]+)"', home.text).group(1)  # type: ignore[union-attr]
    if key == "orch":
        assert ">Approve</button>" not in client.get(f"/ui/approvals/{aid}").text
    r = client.post(f"/ui/approvals/{aid}/approve", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 403
    assert rt.engine.approvals.get(aid)["approvals"] == []


def test_approvers_cannot_stop_and_operators_need_two(client: TestClient, rt: Runtime) -> None:
    """Invariant: stops are for operators; a resume needs two distinct operators."""
    body = {"scope": "global", "value": "*", "reason": "test"}
    assert client.post("/v1/stops", json=body, headers=bearer("alice")).status_code == 403
    assert client.post("/v1/stops", json=body, headers=bearer("olga")).status_code == 200
    res = client.post("/v1/stops/resume", json={"scope": "global"}, headers=bearer("olga")).json()
    assert res["resumed"] is False
    again = client.post(
        "/v1/stops/resume", json={"scope": "global"}, headers=bearer("olga", **{"X-Charter-Client": "cli"})
    )
    assert again.status_code == 409 and rt.engine.stops.list() != []


# ---- replays ----------------------------------------------------------------------------------------------
def test_an_approval_is_used_once_and_lapses_unused(policy_dir: Path, tmp_path: Path) -> None:
    """Invariants: a granted approval is redeemed once; one not redeemed within its window is dead."""
    clock = Clock()
    rt = Runtime(charter.load(policy_dir), MemoryStore(), policy_path=str(policy_dir), poll_s=0, clock=clock)
    with TestClient(create_app(rt, tokens()), base_url="http://testserver") as c:
        aid = gate(c)
        for key in ("alice", "bob"):
            c.post(f"/v1/approvals/{aid}/approve", json={}, headers=bearer(key))
        assert resubmit(c, aid)["outcome"] == "allow"
        replay = resubmit(c, aid)
        assert replay["outcome"] == "deny" and "already used" in replay["rules"][0]["reason"]
        late = gate(c, amount=700.0)
        for key in ("alice", "bob"):
            c.post(f"/v1/approvals/{late}/approve", json={}, headers=bearer(key))
        clock.t += 10 * 60 + 1
        d = resubmit(c, late, amount=700.0)
        assert d["outcome"] == "deny" and "not used within 10 min" in d["rules"][0]["reason"]
        assert c.get(f"/v1/approvals/{late}", headers=bearer("alice")).json()["status"] == "expired"


def test_a_replayed_form_post_is_refused(client: TestClient, rt: Runtime) -> None:
    """Invariant: posting the same approval form twice does not count twice."""
    aid = gate(client)
    sign_in(client, "alice")
    token = csrf_of(client, f"/ui/approvals/{aid}")
    first = client.post(f"/ui/approvals/{aid}/approve", data={"csrf": token}, follow_redirects=False)
    second = client.post(f"/ui/approvals/{aid}/approve", data={"csrf": token}, follow_redirects=False)
    assert (first.status_code, second.status_code) == (303, 409)
    assert len(rt.engine.approvals.get(aid)["approvals"]) == 1


# ---- CSRF --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("form", "headers"),
    [
        ({}, {}),
        ({"csrf": ""}, {}),
        ({"csrf": "A" * 43}, {}),
        ({"csrf": "GOOD"}, {"Origin": "https://evil.example"}),
        ({"csrf": "GOOD"}, {"Origin": "null"}),
        ({"csrf": "OTHER"}, {}),
    ],
)
def test_csrf(client: TestClient, rt: Runtime, form: dict[str, str], headers: dict[str, str]) -> None:
    """Invariant: a state-changing post needs this session's CSRF token and no foreign Origin."""
    aid = gate(client)
    sign_in(client, "bob")
    bobs = csrf_of(client, f"/ui/approvals/{aid}")
    client.cookies.clear()
    sign_in(client, "alice")
    good = csrf_of(client, f"/ui/approvals/{aid}")
    form = {k: {"GOOD": good, "OTHER": bobs}.get(v, v) for k, v in form.items()}
    r = client.post(f"/ui/approvals/{aid}/approve", data=form, headers=headers, follow_redirects=False)
    assert r.status_code == 403
    assert rt.engine.approvals.get(aid)["approvals"] == []


def test_sign_in_from_another_site_is_refused(client: TestClient) -> None:
    """Invariant: login CSRF (signing a victim in as the attacker) is refused by Origin."""
    r = client.post("/ui/login", data={"token": secret("alice")}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and COOKIE not in r.headers.get("set-cookie", "")


# ---- hostile text ----------------------------------------------------------------------------------------
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg/onload=alert(1)>",
    "</textarea><script>alert(1)</script>",
    "javascript:alert(1)",
    "\u202eevil\u202c<b>bidi</b>",
]


@pytest.mark.parametrize("probe", HOSTILE)
def test_hostile_arguments_are_escaped_on_every_page(client: TestClient, probe: str) -> None:
    """Invariant: agent-supplied text is shown as text: never markup, never a script."""
    aid = gate(client, memo=probe)
    client.post(f"/v1/approvals/{aid}/approve", json={"note": probe}, headers=bearer("bob"))
    sign_in(client, "alice")
    for path in ("/ui/approvals", f"/ui/approvals/{aid}", "/ui/runs/r1", "/ui/runs/r1?agent=pay-agent"):
        page = client.get(path).text
        raw = [m for m in ("<script>alert", "<img src=x", "<svg/onload", "<b>bidi") if m in page]
        assert raw == [], (path, raw)
        assert page.count("<script") == 1  # inbox.js only
    detail = client.get(f"/ui/approvals/{aid}").text
    assert html.escape(json.dumps(probe, ensure_ascii=False)[1:-1]) in detail or html.escape(probe) in detail


# ---- sessions --------------------------------------------------------------------------------------------
def test_expired_and_signed_out_sessions_are_dead(rt: Runtime) -> None:
    """Invariants: a session past its lifetime, or signed out on any replica, signs nobody in."""
    clock = Clock()
    sessions = Sessions(SessionKeys(rt.store), 3600.0, clock)
    s, cookie = sessions.issue("alice", hash_token(secret("alice")))
    assert sessions.read(cookie) == s
    clock.t += 3601
    assert sessions.read(cookie) is None
    clock.t -= 3601
    other_replica = Sessions(SessionKeys(rt.store), 3600.0, clock)  # same store, its own memory
    assert other_replica.read(cookie) == s
    sessions.sign_out(s)
    assert other_replica.read(cookie) is None


def test_signed_out_cookie_replayed_is_refused(client: TestClient) -> None:
    """Invariant: a copy of the cookie kept after signing out does not sign anyone in."""
    cookie = sign_in(client, "alice")
    token = csrf_of(client, "/ui/approvals")
    assert client.post("/ui/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    client.cookies.set(COOKIE, cookie)
    assert client.get("/ui/approvals", follow_redirects=False).status_code == 303
    assert client.post("/ui/logout", data={"csrf": token}, follow_redirects=False).status_code == 401


def test_cookie_flags(client: TestClient) -> None:
    """Invariant: the session cookie is HttpOnly and SameSite=Strict, scoped to /ui."""
    r = client.post("/ui/login", data={"token": secret("alice")}, follow_redirects=False)
    flags = r.headers["set-cookie"].lower()
    assert (
        "httponly" in flags and "samesite=strict" in flags and "path=/ui" in flags and "secure" not in flags
    )
    with TestClient(client.app, base_url="https://testserver") as tls:
        flags = tls.post("/ui/login", data={"token": secret("alice")}, follow_redirects=False).headers[
            "set-cookie"
        ]
        assert "secure" in flags.lower()


def test_pages_forbid_framing_and_inline_script(client: TestClient) -> None:
    """Invariant: the inbox cannot be framed (clickjacking) and runs no inline script."""
    sign_in(client, "alice")
    r = client.get("/ui/approvals")
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_unknown_tokens_never_sign_in(client: TestClient) -> None:
    """Invariant: no token, a wrong one, or a huge one gives no session and no 500."""
    for token in ("", "x", secret("alice") + "x", "A" * 100_000):
        r = client.post("/ui/login", data={"token": token}, follow_redirects=False)
        assert r.status_code in (401, 413) and COOKIE not in r.headers.get("set-cookie", "")


# ---- the command line -------------------------------------------------------------------------------------
def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    return subprocess.run(
        [sys.executable, "-m", "charter", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["approvals", "approve", "ap-1", "--as", "lena"], "the sidecar names you from your token"),
        (
            ["approvals", "approve", "ap-1", "--store", "sqlite:///x.db"],
            "the sidecar names you from your token",
        ),
        (
            ["approvals", "approve", "ap-1", "--admin", "--store", "sqlite:///x.db"],
            "--admin writes the store directly",
        ),
        (["approvals", "approve", "ap-1"], "give --token or set $CHARTER_TOKEN"),
        (
            ["stop", "--scope", "global", "--reason", "x", "--as", "olga"],
            "the sidecar names you from your token",
        ),
    ],
)
def test_the_cli_never_takes_a_self_asserted_name_without_admin(args: list[str], message: str) -> None:
    """Invariant: --as is only accepted in the explicit admin mode (usage error, exit 2)."""
    res = _cli(*args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


def test_cli_through_the_sidecar_cannot_fake_a_quorum(policy_dir: Path, tmp_path: Path) -> None:
    """Invariant (issue 15.9): one token is one person; two approvals from one shell need two tokens.
    Admin mode writes the store directly and is recorded as such in the trace."""
    from tests.server.procs import free_port

    store = f"sqlite:///{tmp_path / 'state.db'}"
    trace = tmp_path / "trace.db"
    tokens_file = tmp_path / "tokens.json"
    tokens_file.write_text(
        json.dumps(
            {
                "tokens": [
                    {"name": n, "role": r, "sha256": hash_token(secret(k))} for k, (n, r) in PEOPLE.items()
                ]
            }
        )
    )
    port = free_port()
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "charter",
            "serve",
            str(policy_dir),
            "--store",
            store,
            "--trace",
            str(trace),
            "--port",
            str(port),
            "--tokens",
            str(tokens_file),
            "--poll",
            "0",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        from charter.client import Client, TransportError

        url = f"http://127.0.0.1:{port}"
        orch = Client(url, secret("orch"))
        import time

        for _ in range(300):
            try:
                orch.ready()
                break
            except TransportError:
                time.sleep(0.1)
        d = orch.decide(
            {
                "actor": {"id": "pay-agent"},
                "action": {"target": "pay", "args": {"amount": 900.0, "memo": "m"}},
            }
        )
        aid = d.obligations["approval_id"]
        alice = {"CHARTER_URL": url, "CHARTER_TOKEN": secret("alice")}
        first = _cli("approvals", "approve", aid, "--note", "checked", env=alice)
        assert first.returncode == 0, first.stderr
        second = _cli("approvals", "approve", aid, env=alice)  # the same person again
        assert second.returncode == 1 and "alice has already approved" in second.stderr
        assert orch.approvals.get(aid)["status"] == "pending"
        admin = _cli(
            "approvals",
            "approve",
            aid,
            "--admin",
            "--store",
            store,
            "--as",
            "carol",
            "--policy",
            str(policy_dir),
            "--trace",
            str(trace),
        )
        assert admin.returncode == 0, admin.stderr
        assert "admin mode" in admin.stderr and "recorded as store-admin" in admin.stderr
        doc = orch.approvals.get(aid)
        assert doc["status"] == "approved"
        assert [(a["by"], a["via"]) for a in doc["approvals"]] == [("alice", "cli"), ("carol", "store-admin")]
    finally:
        proc.terminate()
        proc.wait(10)
    _, lines = story(trace, aid)
    text = "\n".join(lines)
    assert "approved by alice through the command line (with a token) (checked)" in text
    assert "approved by carol with direct store access (admin mode)" in text
