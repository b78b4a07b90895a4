"""Webhook and Slack targets: JSON over HTTP POST, signed per the Standard Webhooks specification.

Standard Webhooks (standardwebhooks.com, spec "Signature scheme"): headers ``webhook-id`` (the same
on every retry of one message), ``webhook-timestamp`` (integer seconds) and ``webhook-signature``
``v1,<base64 HMAC-SHA256>`` over ``{id}.{timestamp}.{body}``, keyed with the base64-decoded secret
(given as ``whsec_<base64>``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from charter.notify.message import Notice

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (ValueError when it is not base64 or empty)."""
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except ValueError:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if len(key) < 16:
        raise ValueError("a webhook secret needs at least 16 bytes of key (24 base64 characters)")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body``."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> None:
    """POST ``body``; raises OSError (urllib's errors) unless the answer is 2xx."""
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        if not 200 <= resp.status < 300:
            raise urllib.error.HTTPError(url, resp.status, "not 2xx", resp.headers, None)


class WebhookTarget:
    """Sends the Standard Webhooks envelope, signed when a secret is configured."""

    kind = "webhook"

    def __init__(self, url: str, key: bytes | None, timeout_s: float = 5.0):
        self.url, self.key, self.timeout_s = url, key, timeout_s

    def body(self, notice: Notice) -> bytes:
        """The JSON body (built once per message; retries send the same bytes)."""
        return json.dumps(notice.envelope(), default=str, separators=(",", ":")).encode()

    def send(self, notice: Notice, msg_id: str, body: bytes) -> None:
        """One attempt; signed with this attempt's timestamp so a late retry is not 'too old'."""
        headers = {"Content-Type": "application/json", "User-Agent": "charter-webhooks"}
        if self.key is not None:
            ts = int(time.time())
            headers |= {
                "webhook-id": msg_id,
                "webhook-timestamp": str(ts),
                "webhook-signature": sign(self.key, msg_id, ts, body),
            }
        post(self.url, body, headers, self.timeout_s)


class SlackTarget:
    """A Slack incoming-webhook message (text plus Block Kit sections) with a link into the inbox.

    Slack's format is also understood by Mattermost and Rocket.Chat incoming webhooks."""

    kind = "slack"

    def __init__(self, url: str, timeout_s: float = 5.0):
        self.url, self.timeout_s = url, timeout_s

    @staticmethod
    def message(notice: Notice) -> dict[str, Any]:
        """The Slack payload: ``text`` (notifications, screen readers) and ``blocks``."""
        facts = "\n".join(f"*{_md(k)}:* {_md(v)}" for k, v in notice.facts)
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_md(notice.title)}*\n{facts}"}}
        ]
        if notice.link:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "Open in the charter inbox"},
                            "url": notice.link,
                        }
                    ],
                }
            )
        text = _md(notice.title) + (f" <{notice.link}|open in the inbox>" if notice.link else "")
        return {"text": text, "blocks": blocks}

    def body(self, notice: Notice) -> bytes:
        """The JSON body."""
        return json.dumps(self.message(notice), default=str).encode()

    def send(self, notice: Notice, msg_id: str, body: bytes) -> None:
        """One attempt."""
        post(self.url, body, {"Content-Type": "application/json"}, self.timeout_s)


def _md(text: str) -> str:
    """Slack mrkdwn escaping: &, < and > are control characters there (agent text is hostile)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
