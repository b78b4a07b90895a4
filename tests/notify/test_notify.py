"""Notifications: Standard Webhooks signatures (checked by an independent implementation), retries with
backoff and jitter, bounded queues, the Slack format, e-mail over a real local SMTP server, the serve
config, and decisions that do not wait for any of it."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import charter
from charter.notify import NotifyConfigError, load_humans_config
from charter.notify.config import parse_humans_config
from charter.notify.dispatch import Counters, Dispatcher, Lane, Retry
from charter.notify.email import EmailTarget, subject
from charter.notify.message import build
from charter.notify.webhook import SlackTarget, WebhookTarget, secret_key, sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks spec's example secret

POLICY = """
units USD
group treasury { members alice, bob }
tool transfer { arg amount: double }
permit t { action call transfer }
require approval big {
  action call transfer
  when args.amount > 100.0
  approvers treasury
  quorum 1
  reason "Above 100 needs treasury."
}
"""


class Receiver:
    """A local HTTP server that records every POST (status per call configurable)."""

    def __init__(self, statuses: list[int] | None = None, hang: bool = False):
        self.hits: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses or [])
        self.hang = hang
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.hang:
                    time.sleep(30)
                outer.hits.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.statuses.pop(0) if outer.statuses else 204)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.time() + timeout
        while len(self.hits) < n and time.time() < deadline:
            time.sleep(0.01)
        assert len(self.hits) >= n, f"{len(self.hits)} of {n} notifications arrived"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


APPROVAL = {
    "id": "ap-1",
    "status": "pending",
    "group": "treasury",
    "gates": [{"rule": "big", "quorum": 2}],
    "approvals": [],
    "action": {"kind": "call", "target": "transfer", "agent": "pay", "args": {"amount": 12000}, "run": "r1"},
    "expires_at": 1_790_000_000.0,
    "history": [{"at": 1.0, "event": "opened", "by": "pay", "note": ""}],
}


# ---- Standard Webhooks ---------------------------------------------------------------------------
def test_signature_matches_the_spec_example() -> None:
    # standard-webhooks spec, "Signature scheme": the example id, timestamp, payload and secret
    body = b'{"test": 2432232314}'
    got = sign(secret_key(SECRET), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_webhooks_verify_with_an_independent_implementation(receiver: Receiver) -> None:
    from standardwebhooks import Webhook

    lane = Lane(WebhookTarget(receiver.url, secret_key(SECRET)), "hook", retry=Retry(3, 0.01))
    d = Dispatcher([lane], "https://charter.example.org/ui")
    d.notify("approval", "opened", APPROVAL)
    receiver.wait(1)
    headers, body = receiver.hits[0]
    payload = Webhook(SECRET).verify(body, headers)
    assert payload["type"] == "approval.opened" and payload["data"]["id"] == "ap-1"
    assert payload["data"]["inbox_url"] == "https://charter.example.org/ui/approvals/ap-1"
    assert headers["webhook-id"].startswith("msg_") and headers["webhook-timestamp"].isdigit()
    # a tampered body or another secret fails verification
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(SECRET).verify(body.replace(b"ap-1", b"ap-2"), headers)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook("whsec_" + "A" * 32).verify(body, headers)
    d.close()


def test_retries_keep_the_message_id_and_back_off() -> None:
    r = Receiver(statuses=[500, 503, 204])
    lane = Lane(WebhookTarget(r.url, secret_key(SECRET)), "hook", retry=Retry(5, 0.01))
    d = Dispatcher([lane])
    d.notify("approval", "opened", APPROVAL)
    r.wait(3)
    d.close()
    r.close()
    ids = {h["webhook-id"] for h, _ in r.hits}
    assert len(ids) == 1  # one message, three attempts
    assert (lane.counters.sent, lane.counters.retried, lane.counters.failed) == (1, 2, 0)


def test_backoff_is_exponential_with_full_jitter() -> None:
    retry = Retry(attempts=8, base_s=0.5, cap_s=10.0)
    assert [retry.delay(n, rng=lambda: 1.0) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert [retry.delay(n, rng=lambda: 0.0) for n in range(3)] == [0.0, 0.0, 0.0]
    import random

    rng = random.Random(7).random
    for n in range(10):
        assert 0.0 <= retry.delay(n, rng) <= min(10.0, 0.5 * 2**n)


def test_a_dead_target_fails_after_its_retries_and_is_counted() -> None:
    lane = Lane(WebhookTarget(f"http://127.0.0.1:{closed_port()}/x", None, 1.0), "dead", retry=Retry(3, 0.01))
    d = Dispatcher([lane])
    d.notify("approval", "opened", APPROVAL)
    deadline = time.time() + 10
    while lane.counters.failed == 0 and time.time() < deadline:
        time.sleep(0.01)
    d.close()
    assert (lane.counters.failed, lane.counters.retried, lane.counters.sent) == (1, 2, 0)


def test_a_full_queue_drops_and_counts_without_waiting() -> None:
    lane = Lane(WebhookTarget("http://127.0.0.1:9/x", None), "hook", max_queue=2)  # worker not started
    t0 = time.perf_counter()
    for _ in range(5):
        lane.offer(("approval", "opened", APPROVAL, 1.0, None))
    assert time.perf_counter() - t0 < 0.05
    assert lane.counters == Counters(dropped=3)


def test_events_a_target_did_not_ask_for_are_not_sent(receiver: Receiver) -> None:
    lane = Lane(WebhookTarget(receiver.url, None), "hook", frozenset({"stop.stopped"}))
    d = Dispatcher([lane])
    d.notify("approval", "opened", APPROVAL)
    d.notify(
        "stop", "stopped", {"scope": "agent", "value": "pay", "by": "olga", "via": "inbox", "reason": "loop"}
    )
    receiver.wait(1)
    d.close()
    assert [json.loads(b)["type"] for _, b in receiver.hits] == ["stop.stopped"]


# ---- Slack ------------------------------------------------------------------------------------------
def test_slack_message_escapes_agent_text_and_links_into_the_inbox() -> None:
    record = {**APPROVAL, "action": {**APPROVAL["action"], "args": {"memo": "<!channel> & <http://x|y>"}}}
    msg = SlackTarget.message(build("approval", "opened", record, 1.0, "https://c.example/ui"))
    section = msg["blocks"][0]["text"]["text"]
    assert "<!channel>" not in section and "&lt;!channel&gt; &amp; &lt;http://x|y&gt;" in section
    button = msg["blocks"][1]["elements"][0]
    assert button["url"] == "https://c.example/ui/approvals/ap-1"
    assert msg["text"].endswith("<https://c.example/ui/approvals/ap-1|open in the inbox>")


# ---- e-mail ---------------------------------------------------------------------------------------------
class Mailbox:
    """A local SMTP server (aiosmtpd) collecting what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                outer.messages.append(envelope)
                return "250 OK"

        self.port = closed_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


def test_email_over_smtp() -> None:
    import email

    box = Mailbox()
    try:
        target = EmailTarget(
            "127.0.0.1", box.port, "charter@example.org", ["treasury@example.org"], tls="none"
        )
        lane = Lane(target, "mail", retry=Retry(2, 0.01))
        d = Dispatcher([lane], "https://charter.example.org/ui")
        hostile = {**APPROVAL, "id": "ap-2", "action": {**APPROVAL["action"], "target": "t\r\nBcc: all@x"}}
        d.notify("approval", "opened", hostile)
        deadline = time.time() + 10
        while not box.messages and time.time() < deadline:
            time.sleep(0.02)
        d.close()
    finally:
        box.close()
    assert len(box.messages) == 1 and lane.counters.sent == 1
    env = box.messages[0]
    assert env.rcpt_tos == ["treasury@example.org"]
    msg = email.message_from_bytes(env.content)
    assert msg["Subject"].startswith("[charter] Approval ap-2 opened: call t Bcc: all@x by pay")
    assert msg["Bcc"] is None and msg["X-Charter-Event"] == "approval.opened"
    assert (
        "Open in the inbox: https://charter.example.org/ui/approvals/ap-2"
        in msg.get_payload(decode=True).decode()
    )


def test_subject_is_one_bounded_line() -> None:
    s = subject("a\r\nb\x00c" + "x" * 500)
    assert "\n" not in s and "\r" not in s and len(s) <= 210


# ---- the serve config --------------------------------------------------------------------------------
def test_config_parses_every_target(tmp_path: Path) -> None:
    cfg = tmp_path / "humans.yaml"
    cfg.write_text(
        """
inbox:
  url: https://charter.example.org/ui
  session_hours: 2
notify:
  - webhook: https://hooks.example.org/charter
    secret_env: HOOK_SECRET
    events: [approval.opened, stop.stopped]
    retries: 3
  - slack: https://hooks.slack.example/T/B/X
  - email:
      host: smtp.example.org
      port: 587
      from: charter@example.org
      to: [treasury@example.org]
      password_env: SMTP_PASSWORD
      username: charter
"""
    )
    got = load_humans_config(cfg, {"HOOK_SECRET": SECRET, "SMTP_PASSWORD": "pw"})
    assert got.inbox.url == "https://charter.example.org/ui" and got.inbox.session_s == 7200
    kinds = [lane.target.kind for lane in got.lanes]
    assert kinds == ["webhook", "slack", "email"]
    assert got.lanes[0].events == {"approval.opened", "stop.stopped"} and got.lanes[0].retry.attempts == 4


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"notify": [{"webhook": "ftp://x"}]}, "expected an http:// or https:// URL"),
        ({"notify": [{"webhook": "http://x", "secret_env": "NOPE"}]}, "$NOPE (secret_env) is not set"),
        ({"notify": [{"webhook": "http://x", "secret": "whsec_!!"}]}, "'whsec_' followed by base64"),
        (
            {"notify": [{"webhook": "http://x", "events": ["approval.openned"]}]},
            "unknown event(s) approval.openned",
        ),
        ({"notify": [{"webhook": "http://x", "slack": "http://y"}]}, "exactly one of webhook, slack, email"),
        ({"notify": [{"webhook": "http://x", "retries": -1}]}, "retries must be 0-20"),
        ({"notify": [{"webhook": "http://x", "queue": 10**9}]}, "queue must be 1-100000"),
        ({"notify": [{"webhook": "http://x", "timeout": float("nan")}]}, "timeout must be a positive number"),
        ({"notify": [{"email": {"host": "h", "from": "f"}}]}, "email needs host, from and to"),
        ({"notify": [{"email": {"host": "h", "from": "f", "to": "t", "port": 0}}]}, "port must be 1-65535"),
        ({"notify": [{"webhook": "http://x", "colour": "red"}]}, "unknown key(s) colour"),
        ({"inbox": {"session_key_env": "K"}}, "$K (session_key_env) is not set"),
        ({"smtp": {}}, "unknown section(s) smtp"),
        ([1, 2], "expected a mapping"),
    ],
)
def test_config_errors_name_the_entry(doc: Any, message: str) -> None:
    with pytest.raises(NotifyConfigError) as err:
        parse_humans_config(doc, "humans.yaml", {})
    assert message in str(err.value) and str(err.value).startswith("humans.yaml")


def test_serve_refuses_a_bad_config(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from charter.cli.main import cli

    (tmp_path / "p.charter").write_text(POLICY)
    bad = tmp_path / "humans.yaml"
    bad.write_text("notify:\n  - webhook: nope\n")
    res = CliRunner().invoke(
        cli, ["serve", str(tmp_path / "p.charter"), "--no-auth", "--humans", str(bad)], catch_exceptions=False
    )
    assert res.exit_code == 2 and "notify[0]: expected an http:// or https:// URL" in res.output


# ---- through the sidecar -----------------------------------------------------------------------------
def _runtime(tmp_path: Path, humans: dict[str, Any]) -> Any:
    from charter.server import Runtime
    from charter.state.memory import MemoryStore

    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "p.charter").write_text(POLICY)
    return Runtime(
        charter.load(tmp_path / "p.charter"),
        MemoryStore(),
        policy_path=str(tmp_path / "p.charter"),
        poll_s=0,
        humans=parse_humans_config(humans, "humans", {"S": SECRET}),
    )


def test_sidecar_notifies_and_exports_counters(tmp_path: Path, receiver: Receiver) -> None:
    from standardwebhooks import Webhook
    from starlette.testclient import TestClient
    from tests.server.conftest import auth, token_set

    from charter.server import create_app

    rt = _runtime(
        tmp_path,
        {
            "inbox": {"url": "http://127.0.0.1:8181/ui"},
            "notify": [{"webhook": receiver.url, "secret_env": "S"}],
        },
    )
    with TestClient(create_app(rt, token_set())) as c:
        d = c.post(
            "/v1/decide",
            json={"actor": {"id": "a"}, "action": {"target": "transfer", "args": {"amount": 500.0}}},
            headers=auth("orch"),
        ).json()
        aid = d["obligations"]["approval_id"]
        assert (
            c.post(f"/v1/approvals/{aid}/approve", json={"note": "ok"}, headers=auth("alice")).status_code
            == 200
        )
        receiver.wait(2)
        events = [Webhook(SECRET).verify(b, h) for h, b in receiver.hits]
        assert [e["type"] for e in events] == ["approval.opened", "approval.approved"]
        approved = events[1]["data"]
        assert approved["approvals"][0] == {**approved["approvals"][0], "by": "alice", "via": "http"}
        metrics = c.get("/metrics").text
        assert 'charter_notifications_total{target="webhook",name="webhook",result="sent"} 2' in metrics
        assert 'charter_notifications_total{target="webhook",name="webhook",result="dropped"} 0' in metrics


def _decide_times(engine: Any, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        d = engine.decide(
            {"actor": {"id": "a"}, "action": {"target": "transfer", "args": {"amount": 500.0 + i}}}
        )
        out.append(time.perf_counter() - t0)
        assert d.outcome.value == "require_approval"
    return sorted(out)


def test_decisions_do_not_wait_for_failing_notifications(tmp_path: Path, receiver: Receiver) -> None:
    """Every decision here opens an approval, so every one notifies; a refused target, a target that
    never answers and a queue that overflows leave decision latency where a healthy target has it."""
    hang = Receiver(hang=True)
    try:
        up = {"notify": [{"webhook": receiver.url, "secret_env": "S"}]}
        down = {
            "notify": [
                {"webhook": f"http://127.0.0.1:{closed_port()}/x", "retries": 5, "backoff": 0.05},
                {"webhook": hang.url, "timeout": 30, "queue": 50, "name": "hanging"},
            ]
        }
        runtimes = {"none": _runtime(tmp_path / "a", {}), "up": _runtime(tmp_path / "b", up)}
        runtimes["down"] = _runtime(tmp_path / "c", down)
        times: dict[str, list[float]] = {k: [] for k in runtimes}
        for _ in range(3):  # alternate, so load on the machine hits each alike
            for k, rt in runtimes.items():
                times[k] += _decide_times(rt.engine, 200)
        p = {k: (sorted(v)[len(v) // 2], sorted(v)[int(len(v) * 0.99)]) for k, v in times.items()}
        print("\n" + ", ".join(f"{k}: p50 {a * 1e6:.0f} us p99 {b * 1e6:.0f} us" for k, (a, b) in p.items()))
        assert p["down"][0] < p["up"][0] * 1.5 + 50e-6
        counters = {lane.name: lane.counters for lane in runtimes["down"].dispatcher.lanes}
        assert counters["hanging"].dropped > 0  # 600 notices, a queue of 50, a target that never answers
        for rt in runtimes.values():
            rt.close()
    finally:
        hang.close()
